#!/usr/bin/env python3
"""Echo benchmarks over loopback: the driver behind benches/run-echo.sh.

Runs every echo server pinned to core 0 and the clients pinned to core 1:

- throughput: `hybi load` (payload x connections x in flight), every server in each
  repetition, in a rotating order so that a burst of other load hits them alike; the
  median of the repetitions is reported, with the server's and the client's CPU use
  sampled between the load generator's progress ticks;
- handshakes per second: `handshakes` (open, close, repeat, 32 at a time);
- memory per idle connection: the server's RSS with N idle connections held by
  `idle-clients` (a separate process) minus its RSS before, over N;
- tls: 1 KiB echo over wss on hybi-mio and tokio-tungstenite (tokio-rustls) beside
  the same servers in plaintext, in one repetition loop; TLS handshakes per second;
  memory per idle wss connection. The certificate is made for the run (openssl);
- deflate: 1 KiB JSON-like echo with permessage-deflate on hybi-mio and on yawc
  (level 1, context takeover, both), beside both uncompressed, in one repetition
  loop, with the server's CPU time per message. Each deflate server is first
  checked to agree to the extension and compress its echo.

Writes a JSON file with every sample, a markdown report and an SVG bar chart.
Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

# uWebSockets.js: one App on one Node thread (benches/echo/uws/echo.mjs), its package
# installed by benches/run-echo.sh into benches/echo/uws/node_modules.
UWS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "uws")
UWS = "uWebSockets.js"
SERVERS = [
    # name, command (ADDR is replaced), URL path, extra load flags
    ("raw", ["{R}/echo-raw", "ADDR"], "/echo", ["--accept-masked"]),
    ("hybi-mio", ["{B}/mio-echo-server", "ADDR", "--workers", "1"], "/echo", []),
    ("hybi-std", ["{B}/std-echo-server", "ADDR"], "/echo", []),
    ("hybi-tokio", ["{R}/examples/tokio-echo-server", "ADDR"], "/echo", []),
    ("tungstenite", ["{R}/echo-tungstenite", "ADDR"], "/echo", []),
    ("tokio-tungstenite", ["{R}/echo-tokio-tungstenite", "ADDR"], "/echo", []),
    ("fastwebsockets", ["{R}/echo-fastwebsockets", "ADDR"], "/echo", []),
    ("tokio-websockets", ["{R}/echo-tokio-websockets", "ADDR"], "/echo", []),
    ("sockudo-ws", ["{R}/echo-sockudo-ws", "ADDR"], "/echo", []),
    (UWS, ["{NODE}", os.path.join(UWS_DIR, "echo.mjs"), "ADDR"], "/echo", []),
]
PEERS = ["tungstenite", "tokio-tungstenite", "fastwebsockets", "tokio-websockets",
         "sockudo-ws", UWS]
# The fastest tokio peers, beside which hybi-tokio is also shown.
TOKIO_FAST = ["fastwebsockets", "tokio-websockets", "sockudo-ws"]
# A thread per connection: threads that end during the window take their CPU time
# with them, so no CPU figure is shown for these.
THREADED = {"hybi-std", "tungstenite"}
# The tls group: the same servers over TLS and in plaintext, in one loop. Spec
# options: "tls" (the clients connect with TLS and do not verify the certificate),
# "mio_tls" (needs the TLS interface of the hybi-mio example and `hybi load`).
TLS_FLAGS = ["--tls-cert", "{CERT}", "--tls-key", "{KEY}"]
TLS_SERVERS = [
    ("hybi-mio", ["{B}/mio-echo-server", "ADDR", "--workers", "1"], "/echo", []),
    ("hybi-mio-tls", ["{B}/mio-echo-server", "ADDR", "--workers", "1"] + TLS_FLAGS, "/echo",
     ["--insecure"], {"tls": True, "mio_tls": True}),
    ("tokio-tungstenite", ["{R}/echo-tokio-tungstenite", "ADDR"], "/echo", []),
    ("tokio-tungstenite-tls", ["{R}/echo-tokio-tungstenite-tls", "ADDR"] + TLS_FLAGS, "/echo",
     ["--insecure"], {"tls": True}),
]
TLS_CASES = [(1024, 64, 16)]
# The deflate group: JSON-like text (`--json-payload`), echoes checked byte for byte.
# "deflate": the client offers permessage-deflate and the server must agree.
JSON = ["--json-payload", "--verify"]
DEFLATE_SERVERS = [
    ("hybi-mio", ["{B}/mio-echo-server", "ADDR", "--workers", "1"], "/echo", JSON),
    ("hybi-mio-deflate", ["{B}/mio-echo-server", "ADDR", "--workers", "1", "--deflate"],
     "/echo", JSON + ["--deflate"], {"deflate": True}),
    ("yawc", ["{R}/echo-yawc", "ADDR", "--no-deflate"], "/echo", JSON),
    ("yawc-deflate", ["{R}/echo-yawc", "ADDR"], "/echo", JSON + ["--deflate"],
     {"deflate": True}),
]
DEFLATE_CASES = [(1024, 64, 16)]
SIZES = [16, 1024, 65536]
CONNS = [1, 64, 1000]
INFLIGHT = [1, 16]


def cpu_seconds(pid):
    """CPU time of a process's live threads, in seconds, from the scheduler's exact
    accounting (/proc/PID/task/*/schedstat; the tick-sampled utime and stime of
    /proc/PID/stat are far off on this VM)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return float("nan")
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass  # a thread that just ended
    return total / 1e9


def core_ticks():
    """(busy, nice, total) clock ticks of cores 0 and 1 from /proc/stat. `nice` is
    the time of niced processes (a background fuzzer), counted apart from busy."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(("cpu0 ", "cpu1 ")):
                v = [int(x) for x in line.split()[1:]]
                user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
                out[line[:4]] = (user + system + irq + softirq + steal, nice,
                                 sum(v[:8]))
    return out


def short_slice(ns=100_000):
    """Asks the scheduler for a short time slice (SCHED_OTHER, nice unchanged) for
    this process and, by inheritance, every server and client it starts.

    Linux's EEVDF scheduler lets a running task finish its slice (3 ms by default)
    before a task that wakes up gets the core. With a background process on the
    same cores (a niced fuzzer, a build), a server or client that blocks for a few
    microseconds on every round trip then waits up to 3 ms to run again, and the
    benchmark measures that. A task with a shorter slice preempts on wakeup
    (PREEMPT_SHORT, Linux 6.12+). Returns True if the kernel took it."""
    if platform.machine() != "x86_64" or sys.platform != "linux":
        return False
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    # struct sched_attr, SCHED_ATTR_SIZE_VER1: size, policy, flags, nice, priority,
    # runtime (the slice for SCHED_OTHER), deadline, period, util_min, util_max.
    attr = ctypes.create_string_buffer(
        struct.pack("IIQiIQQQII", 56, 0, 0, os.getpriority(os.PRIO_PROCESS, 0), 0, ns,
                    0, 0, 0, 0))
    return libc.syscall(314, 0, attr, 0) == 0  # SYS_sched_setattr


def uws_skip_reason():
    """Why the uWebSockets.js server cannot run here, or None. benches/run-echo.sh
    installs its package and checks that the binary loads, passing a failure on in
    ECHO_UWS_SKIP; run directly, this checks that node and the package are there."""
    why = os.environ.get("ECHO_UWS_SKIP")
    if why:
        return why
    node = os.environ.get("ECHO_NODE", "node")
    if not shutil.which(node):
        return f"{node} not found (Node >= 20 runs uWebSockets.js)"
    pkg = os.path.join(UWS_DIR, "node_modules", "@trufflesuite", "uws-js-unofficial")
    if not os.path.isdir(pkg):
        return (f"its package is not installed in {os.path.relpath(UWS_DIR)}/node_modules "
                "(benches/run-echo.sh installs it)")
    return None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_listening(port, timeout=10.0, proc=None):
    until = time.time() + timeout
    while time.time() < until:
        if proc is not None and proc.poll() is not None:
            return False  # it exited
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def spec_opts(spec):
    return spec[4] if len(spec) > 4 else {}


def tls_probe(port, timeout=5.0):
    """A TLS handshake with the server on `port` (certificate not verified): None if
    it completed, else why not."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            with ctx.wrap_socket(sock) as tls:
                return None if tls.version() else "no TLS version agreed"
    except (OSError, ssl.SSLError) as e:
        return f"{type(e).__name__}: {e}"


def log_tail(path, lines=3):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


class Server:
    def __init__(self, spec, port, paths, log_dir):
        self.name, cmd, self.path, self.load_flags = spec[:4]
        self.tls = bool(spec_opts(spec).get("tls"))
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.url = f"{'wss' if self.tls else 'ws'}://{self.addr}{self.path}"
        argv = [a.replace("{R}", paths["R"]).replace("{B}", paths["B"]) for a in cmd]
        argv = [paths.get(a, a) for a in argv]  # {CERT}, {KEY}
        argv = [self.addr if a == "ADDR" else a for a in argv]
        self.log_path = os.path.join(log_dir, f"{self.name}-{port}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0"] + argv, stdout=self.log, stderr=self.log
        )
        if not wait_listening(port, proc=self.proc):
            code = self.proc.poll()
            self.stop()
            raise RuntimeError(f"{self.name} did not start listening on {self.addr}"
                               + (f" (it exited with {code})" if code is not None else "")
                               + f": {log_tail(self.log_path)}")
        if self.tls:
            why = tls_probe(port)
            if why:
                self.stop()
                raise RuntimeError(f"{self.name} on {self.addr} did not complete a TLS "
                                   f"handshake ({why}); its log: {log_tail(self.log_path)}")

    @property
    def pid(self):
        return self.proc.pid  # taskset execs the server: same pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def run_load(hybi, server, size, conns, inflight, secs):
    """One `hybi load` run; returns its JSON summary plus CPU use of both sides."""
    url = server.url
    argv = ["taskset", "-c", "1", hybi, "load", "--url", url, "--conns", str(conns),
            "--inflight", str(inflight), "--size", str(size), "--secs", str(secs),
            "--json"] + server.load_flags
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    samples = []  # (wall, server cpu, client cpu) at each progress tick
    err = []

    def watch():
        while True:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                return
            now = time.monotonic()
            s_cpu, c_cpu = cpu_seconds(server.pid), cpu_seconds(proc.pid)
            cores = core_ticks()
            for _ in range(chunk.count(b"\r[")):
                samples.append((now, s_cpu, c_cpu, cores))
            err.append(chunk)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    timer = threading.Timer(secs + 120, proc.kill)
    timer.start()
    out = proc.stdout.read()
    proc.wait()
    timer.cancel()
    t.join(5)
    text = out.decode(errors="replace").strip()
    try:
        result = json.loads(text.splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        tail = b"".join(err).decode(errors="replace").replace("\r", "\n").strip()
        tail = tail.splitlines()[-1] if tail else ""
        return {"error": f"exit {proc.returncode}: {tail}", "msgs_per_sec": 0.0}
    if proc.returncode != 0:
        result["error"] = f"exit {proc.returncode}"
    result["ticks"] = len(samples)
    result["loadavg"] = float(open("/proc/loadavg").read().split()[0])
    if len(samples) >= 2:
        (w0, s0, c0, k0), (w1, s1, c1, k1) = samples[0], samples[-1]
        if w1 > w0:
            result["server_cpu"] = (s1 - s0) / (w1 - w0)
            result["client_cpu"] = (c1 - c0) / (w1 - w0)
            for core in ("cpu0", "cpu1"):
                total = k1[core][2] - k0[core][2]
                if total > 0:
                    result[core + "_busy"] = (k1[core][0] - k0[core][0]) / total
                    result[core + "_nice"] = (k1[core][1] - k0[core][1]) / total
    return result


def process_cpu_seconds(pid):
    """CPU time of a whole process, threads that ended included (utime + stime of
    /proc/PID/stat, which the kernel scales to its exact runtime), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def run_handshakes(handshakes, server, secs):
    """One `handshakes` run, plus the CPU time each side spent per handshake: when
    the client's core is saturated, the rate is the client's, and the server's CPU
    per handshake is what tells servers apart."""
    argv = ["taskset", "-c", "1", handshakes, server.addr, server.path, str(secs), "32"]
    if server.tls:
        argv.append("--tls")
    cpu0 = process_cpu_seconds(server.pid)
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, capture_output=True, timeout=secs + 60)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = process_cpu_seconds(server.pid)
    try:
        result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"handshakes_per_sec": 0.0, "error": proc.stderr.decode()[-300:]}
    if proc.returncode != 0:
        result["error"] = result.get("first_error") or f"exit {proc.returncode}"
    done = result.get("completed", 0)
    client = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    if done:
        result["server_cpu_us"] = (cpu1 - cpu0) * 1e6 / done
        result["client_cpu_us"] = client * 1e6 / done
    result["client_busy"] = client / secs
    return result


def run_memory(paths, spec, port, n, echo, log_dir):
    server = Server(spec, port, paths, log_dir)
    try:
        time.sleep(0.5)
        before = rss_kib(server.pid)
        argv = ["taskset", "-c", "1", os.path.join(paths["R"], "idle-clients"),
                server.addr, spec[2], str(n)] + (["--echo"] if echo else [])
        if server.tls:
            argv.append("--tls")
        if spec_opts(spec).get("deflate"):
            argv.append("--deflate")
        client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        line = client.stdout.readline().decode().strip()
        if not line.startswith("ready"):
            client.kill()
            _, e = client.communicate()
            return {"error": f"idle-clients: {e.decode().strip()[-300:]}"}
        time.sleep(2.0)
        after = rss_kib(server.pid)
        client.stdin.close()
        client.wait(60)
        return {"rss_before_kib": before, "rss_after_kib": after, "conns": n,
                "bytes_per_conn": (after - before) * 1024 / n}
    finally:
        server.stop()


def deflate_probe(port, path, timeout=5.0):
    """Offers permessage-deflate (as `hybi load --deflate` does: with a bare
    client_max_window_bits), sends one compressed JSON-like text message and checks
    that the echo comes back compressed (RSV1) and inflates to what was sent.
    Returns the server's Sec-WebSocket-Extensions answer and the sizes; raises
    RuntimeError if the server did not agree or did not compress."""
    import base64
    import zlib
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
                      "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode(errors="replace").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise RuntimeError(f"not a 101: {lines[0]!r}")
        ext = ", ".join(line.split(":", 1)[1].strip() for line in lines[1:]
                        if line.split(":", 1)[0].strip().lower() == "sec-websocket-extensions")
        if "permessage-deflate" not in ext:
            raise RuntimeError("permessage-deflate offered, not agreed "
                               f"(Sec-WebSocket-Extensions: {ext or 'absent'})")
        payload = ('{"id":1,"user":"probe","items":['
                   + ",".join('{"k":%d,"v":"value-%d"}' % (i, i % 7) for i in range(40))
                   + "]}").encode()
        c = zlib.compressobj(1, zlib.DEFLATED, -15)
        body = (c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]  # RFC 7692 7.2.1
        mask = os.urandom(4)
        n = len(body)
        length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        sock.sendall(bytes([0xC1]) + length + mask
                     + bytes(b ^ mask[i % 4] for i, b in enumerate(body)))

        def need(k):
            nonlocal buf
            while len(buf) < k:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("closed before the echo")
                buf += chunk
        need(2)
        b0, n, off = buf[0], buf[1] & 0x7F, 2
        if n == 126:
            need(4)
            n, off = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            need(10)
            n, off = int.from_bytes(buf[2:10], "big"), 10
        need(off + n)
        data = buf[off:off + n]
        if not b0 & 0x40:
            raise RuntimeError(f"agreed, but the echo came uncompressed (opcode {b0 & 15}, "
                               f"{n} bytes)")
        if zlib.decompressobj(-15).decompress(data + b"\x00\x00\xff\xff") != payload:
            raise RuntimeError("the compressed echo does not inflate to what was sent")
    return {"extensions": ext, "payload": len(payload), "echo_on_wire": n}


def make_cert(directory):
    """A self-signed P-256 certificate for 127.0.0.1 and localhost, made for the run.
    Returns (cert, key) paths."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def tls_interface(hybi, paths, log_dir, port):
    """Whether this build has hybi's TLS interface: `hybi load --insecure` (wss for
    the load generator) and the hybi-mio example's `--tls-cert/--tls-key`. Returns
    (why `hybi load` cannot, why the hybi-mio example cannot), each None if it can."""
    out = subprocess.run([hybi, "load", "--help"], capture_output=True, text=True)
    load = None if "--insecure" in out.stdout else (
        "`hybi load --help` lists no --insecure: this hybi-cli has no TLS (wss) load "
        "generator yet")
    spec = next(s for s in TLS_SERVERS if spec_opts(s).get("mio_tls"))
    try:
        Server(spec, port, paths, log_dir).stop()
        mio = None
    except RuntimeError as e:
        mio = ("the hybi-mio echo example does not serve TLS with --tls-cert/--tls-key "
               f"({e})")
    return load, mio


def run_group(group, specs, cases, args, paths, hybi, log_dir, t0, failures, base_port,
              parts, no_server=None, no_load=None, check=None):
    """One group (tls, deflate): every server in each repetition, rotating, as the
    echo part does, then handshakes (if in `parts`) in the same repetition, then
    memory per idle connection. `no_server`: name -> why that server cannot run (all
    its cases fail); `no_load`: name -> why its echo cases cannot run; `check(server)`
    runs once on each server started and returns what to record, or raises
    RuntimeError (the server's cases then fail)."""
    no_server = dict(no_server or {})
    no_load = dict(no_load or {})
    store = {"cases": cases, "servers": [s[0] for s in specs], "throughput": {},
             "handshakes": {}, "memory": {}, "checks": {}, "not_run": {}}

    def fail(name, part, why):
        store["not_run"].setdefault(name, {})[part] = why
        failures.append(f"{group} {name} {part}: {why}")
        print(f"[{time.time() - t0:6.0f}s] {group} {name} {part}: NOT RUN: {why}",
              file=sys.stderr, flush=True)

    servers = []
    if parts & {"echo", "handshakes"}:
        for i, spec in enumerate(specs):
            if spec[0] in no_server:
                continue
            try:
                server = Server(spec, base_port + i, paths, log_dir)
            except RuntimeError as e:
                no_server[spec[0]] = str(e)
                continue
            servers.append(server)
            if check:
                try:
                    store["checks"][spec[0]] = check(server)
                    print(f"[{time.time() - t0:6.0f}s] {group} {spec[0]}: "
                          f"{store['checks'][spec[0]]}", flush=True)
                except (RuntimeError, OSError) as e:
                    no_server[spec[0]] = f"check failed: {e}"
                    servers.pop().stop()
    for name, why in no_server.items():
        for part in sorted(parts & {"echo", "handshakes", "memory"}):
            fail(name, part, why)
    for name, why in no_load.items():
        if name not in no_server and "echo" in parts:
            fail(name, "echo", why)
    try:
        for rep in range(args.reps):
            order = servers[rep % len(servers):] + servers[:rep % len(servers)] if servers else []
            if "echo" in parts:
                for case in cases:
                    key = case_key(*case)
                    for server in order:
                        if server.name in no_load:
                            continue
                        r = run_load(hybi, server, *case, args.secs)
                        r["rep"] = rep
                        store["throughput"].setdefault(key, {}).setdefault(
                            server.name, []).append(r)
                        status = r.get("error", "")
                        per_msg = cpu_per_msg(r)
                        print(f"[{time.time() - t0:6.0f}s] {group} rep {rep + 1}/{args.reps} "
                              f"{size_name(case[0]):>6} {case[1]:>4} x {case[2]:>2} "
                              f"{server.name:<22} {human(r['msgs_per_sec']):>9} msgs/s "
                              f"srv cpu {100 * r.get('server_cpu', float('nan')):4.0f}% "
                              f"({per_msg:.2f} µs/msg) "
                              f"load cpu {100 * r.get('client_cpu', float('nan')):4.0f}% "
                              f"{status}", flush=True)
                        if status:
                            failures.append(f"{group} {server.name} {key}: {status}")
                        if not server.alive():
                            raise RuntimeError(f"{server.name} died")
            if "handshakes" in parts:
                for server in order:
                    r = run_handshakes(os.path.join(args.release, "handshakes"), server,
                                       args.hs_secs)
                    r["rep"] = rep
                    store["handshakes"].setdefault(server.name, []).append(r)
                    print(f"[{time.time() - t0:6.0f}s] {group} rep {rep + 1}/{args.reps} "
                          f"handshakes {server.name:<22} "
                          f"{human(r['handshakes_per_sec']):>9}/s "
                          f"server {r.get('server_cpu_us', float('nan')):6.1f} µs "
                          f"client core {100 * r.get('client_busy', float('nan')):3.0f}% "
                          f"{r.get('error', '')}", flush=True)
                    if "error" in r:
                        failures.append(f"{group} {server.name} handshakes: {r['error']}")
    finally:
        for server in servers:
            server.stop()
    if "memory" in parts:
        port = base_port + 20
        for spec in specs:
            if spec[0] in no_server:
                continue
            entry = store["memory"].setdefault(spec[0], {})
            for kind in ("idle", "echo"):
                port += 1
                try:
                    r = run_memory(paths, spec, port, args.idle_conns, kind == "echo",
                                   log_dir)
                except RuntimeError as e:
                    r = {"error": str(e)}
                entry[kind] = r
                msg = (f"{r['bytes_per_conn'] / 1024:.2f} KiB/conn "
                       f"({r['rss_before_kib']} -> {r['rss_after_kib']} KiB)"
                       if "bytes_per_conn" in r else r["error"])
                print(f"[{time.time() - t0:6.0f}s] {group} memory {spec[0]:<22} {kind:<4} "
                      f"{msg}", flush=True)
                if "error" in r:
                    failures.append(f"{group} {spec[0]} memory {kind}: {r['error']}")
    return store


def cpu_per_msg(r):
    """The server's CPU time per echoed message, in µs."""
    cpu, rate = r.get("server_cpu", float("nan")), r.get("msgs_per_sec", 0.0)
    return cpu / rate * 1e6 if rate and cpu == cpu else float("nan")


def cpu_ratio(row, ours, peers):
    """`ours`' CPU time per message over the lowest of `peers`' (nan if unmeasured)."""
    theirs = [row[p]["cpu_us"] for p in peers if p in row and row[p]["cpu_us"] == row[p]["cpu_us"]]
    mine = row.get(ours, {}).get("cpu_us", float("nan"))
    return mine / min(theirs) if theirs and mine == mine else float("nan")


def median(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def human(x):
    if x != x:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def size_name(size):
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def case_key(size, conns, inflight):
    return f"{size}/{conns}/{inflight}"


# ---------------------------------------------------------------------------
# Reports


def summarize(data):
    """Medians per case and server."""
    names = [s[0] for s in SERVERS]
    table = {}
    for case in data["cases"]:
        key = case_key(*case)
        row = {}
        for name in names:
            runs = data["throughput"].get(key, {}).get(name, [])
            ok = [r for r in runs if "error" not in r]
            row[name] = {
                "msgs": median([r["msgs_per_sec"] for r in ok]) if ok else float("nan"),
                "server_cpu": median([r.get("server_cpu", float("nan")) for r in ok]),
                "cpu_us": median([cpu_per_msg(r) for r in ok]),
                "client_cpu": median([r.get("client_cpu", float("nan")) for r in ok]),
                "core1_busy": median([r.get("cpu1_busy", float("nan")) for r in ok]),
                "p50": median([r["latency_us"]["p50"] for r in ok]) if ok else float("nan"),
                "p99": median([r["latency_us"]["p99"] for r in ok]) if ok else float("nan"),
                "runs": len(runs),
                "errors": len(runs) - len(ok),
            }
        table[key] = row
    return table


def write_markdown(data, table, path):
    m = data["meta"]
    lines = [
        "<!-- generated by benches/run-echo.sh; do not edit by hand -->",
        "# Echo benchmarks over loopback: results",
        "",
        f"{m['date']}, {m['cpu']}, {m['cores']} cores, kernel {m['kernel']}; "
        f"{m['reps']} repetitions of {m['secs']} s per case, median; "
        f"servers on core 0, `hybi load` on core 1. Load average at start "
        f"{m['loadavg_start']}, at end {m.get('loadavg_end', '-')}; "
        f"other processes at start: {m['others']}; "
        + ("every process benchmarked ran with a 100 µs scheduler slice."
           if m.get("short_slice") else "default scheduler slice."),
    ]
    for name, why in m.get("skipped", {}).items():
        lines += ["", f"**{name} was not run**: {why}."]
    if data["throughput"]:
        write_echo_table(data, table, lines)
    if data.get("handshakes"):
        write_handshakes_table(data, lines)
    write_memory_table(data, lines)
    for group in ("tls", "deflate"):
        if data.get(group):
            write_group_markdown(lines, group, data[group], m)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_echo_table(data, table, lines):
    names = [s[0] for s in SERVERS]
    lines += [
        "",
        "Messages per second echoed (each way). `ceiling` is the raw TCP echo "
        "(handshake, then bytes back verbatim). Percentages are of the ceiling in the "
        "same run. `cpu` is the server's CPU use (of one core) during the window; "
        "`load core` is how busy core 1 (the load generator's) was during the "
        "ceiling's run (/proc/stat, softirq included): near 100%, `hybi load` is what "
        "limits the ceiling. `µs` is the server's CPU time per echoed message (all its "
        "threads, from /proc; median over the repetitions): where the load generator "
        "sets every rate, it is the figure that separates the servers, and the "
        "`CPU/msg` columns compare it (lower is better: 0.80 means hybi uses 80% of the "
        "peer's CPU per message).",
        "",
        "| payload | conns | in flight | " + " | ".join(
            ("ceiling" if n == "raw" else n) for n in names)
        + " | hybi-mio / best peer | hybi-mio CPU/msg / best peer's | hybi-std / tungstenite"
        " | hybi-tokio / tokio-tungstenite | hybi-tokio / best of fastwebsockets, "
        "tokio-websockets, sockudo-ws | hybi-tokio CPU/msg / best tokio peer's | load core (ceiling) |",
        "|" + "---|" * (3 + len(names) + 7),
    ]
    for case in data["cases"]:
        row = table[case_key(*case)]
        raw = row.get("raw", {"msgs": float("nan")})["msgs"]
        cells = []
        for n in names:
            v = row[n]["msgs"]
            cpu = row[n]["server_cpu"]
            cell = human(v)
            if n != "raw" and raw == raw and raw > 0 and v == v:
                cell += f" ({100 * v / raw:.0f}%)"
            if cpu == cpu and cpu >= 0 and n not in THREADED:
                cell += f" cpu {100 * cpu:.0f}%"
                if row[n]["cpu_us"] == row[n]["cpu_us"]:
                    cell += f" {row[n]['cpu_us']:.2f} µs"
            if row[n]["errors"]:
                cell += f" **{row[n]['errors']} failed**"
            cells.append(cell)
        best = max((row[p]["msgs"] for p in PEERS
                    if p in row and row[p]["msgs"] == row[p]["msgs"]), default=float("nan"))
        nan = {"msgs": float("nan"), "core1_busy": float("nan")}
        mio, std, tung = (row.get(n, nan) for n in ("hybi-mio", "hybi-std", "tungstenite"))
        vs_peer = mio["msgs"] / best if best and best == best else float("nan")
        vs_tung = std["msgs"] / tung["msgs"] if tung["msgs"] else float("nan")
        tok, ttung = (row.get(n, nan) for n in ("hybi-tokio", "tokio-tungstenite"))
        vs_ttung = tok["msgs"] / ttung["msgs"] if ttung["msgs"] else float("nan")
        fast = max((row[p]["msgs"] for p in TOKIO_FAST
                    if p in row and row[p]["msgs"] == row[p]["msgs"]), default=float("nan"))
        vs_fast = tok["msgs"] / fast if fast and fast == fast else float("nan")
        mio_cpu = cpu_ratio(row, "hybi-mio", [p for p in PEERS if p not in THREADED])
        tok_cpu = cpu_ratio(row, "hybi-tokio",
                            [p for p in PEERS if p not in THREADED and p != "hybi-mio"])
        ccpu = row.get("raw", nan)["core1_busy"]
        lines.append(
            f"| {size_name(case[0])} | {case[1]} | {case[2]} | " + " | ".join(cells)
            + f" | {vs_peer:.2f}x | {mio_cpu:.2f} | {vs_tung:.2f}x | {vs_ttung:.2f}x"
            + f" | {vs_fast:.2f}x | {tok_cpu:.2f} | "
            + (f"{100 * ccpu:.0f}%" if ccpu == ccpu else "-") + " |"
        )


def write_handshakes_table(data, lines):
    names = [s[0] for s in SERVERS]
    lines += ["", "## Handshakes per second", "",
              "Open (TCP connect, upgrade, 101) and close (close frames both ways, the "
              "server's TCP close) as fast as possible, 32 connections at a time, from "
              "one client thread on core 1. Median of the repetitions. `server CPU` is "
              "the server's CPU time per handshake (threads that ended included), "
              "`client core` how busy the client kept its core: near 100%, the client "
              "sets the rate, and the server's CPU per handshake is the comparison "
              "that holds.", "",
              "| server | handshakes/s | vs tungstenite | server CPU | tungstenite's CPU / this | client core | runs |",
              "|---|---|---|---|---|---|---|"]
    hs = data.get("handshakes", {})

    def hs_medians(n):
        ok = [r for r in hs.get(n, []) if "error" not in r]
        return (median([r["handshakes_per_sec"] for r in ok]),
                median([r.get("server_cpu_us", float("nan")) for r in ok]),
                median([r.get("client_busy", float("nan")) for r in ok]), len(ok))

    tung, tung_cpu, _, _ = hs_medians("tungstenite")
    for n in names:
        if n == "raw" or n not in hs:
            continue
        v, cpu, busy, ok = hs_medians(n)
        rate = f"{v / tung:.2f}x" if tung == tung and tung else "-"
        eff = f"{tung_cpu / cpu:.2f}x" if cpu == cpu and cpu and tung_cpu == tung_cpu else "-"
        cpu_s = f"{cpu:.1f} µs" if cpu == cpu else "-"
        busy_s = f"{100 * busy:.0f}%" if busy == busy else "-"
        lines.append(f"| {n} | {human(v)} | {rate} | {cpu_s} | {eff} | {busy_s} | "
                     f"{ok}/{len(hs[n])} |")


def write_memory_table(data, lines):
    names = [s[0] for s in SERVERS]
    mem = data.get("memory", {})
    if mem:
        lines += ["", "## Memory per idle connection", "",
                  f"Server RSS with {data['meta']['idle_conns']:,} open idle connections "
                  "(held by a separate process) minus its RSS before, over the number "
                  "of connections. `after one echo`: each connection first echoed one "
                  "16-byte message (buffers allocated lazily are then allocated).", "",
                  "| server | after the handshake | after one echo | RSS before |",
                  "|---|---|---|---|"]
        for n in names:
            if n not in mem:
                continue
            cells = []
            for kind in ("idle", "echo"):
                r = mem[n].get(kind, {})
                cells.append(f"{r['bytes_per_conn'] / 1024:.1f} KiB" if "bytes_per_conn" in r
                             else r.get("error", "-"))
            before = mem[n].get("idle", {}).get("rss_before_kib")
            lines.append(f"| {'ceiling' if n == 'raw' else n} | {cells[0]} | {cells[1]} | "
                         + (f"{before / 1024:.1f} MiB" if before else "-") + " |")


# (a, b, what a / b is, target): the ratios each group reports, of messages/s.
GROUP_RATIOS = {
    "tls": [
        ("hybi-mio-tls", "hybi-mio", "hybi-mio over TLS / plaintext", 0.80),
        ("hybi-mio-tls", "tokio-tungstenite-tls", "hybi-mio / tokio-tungstenite, both over TLS",
         None),
        ("tokio-tungstenite-tls", "tokio-tungstenite", "tokio-tungstenite over TLS / plaintext",
         None),
    ],
    "deflate": [
        ("hybi-mio-deflate", "hybi-mio", "hybi-mio with deflate / uncompressed", None),
        ("hybi-mio-deflate", "yawc-deflate", "hybi-mio / yawc, both with deflate", 1.3),
        ("yawc-deflate", "yawc", "yawc with deflate / uncompressed", None),
    ],
}


def group_rows(store, key):
    """Medians per server for one case of a group."""
    rows = {}
    for name, runs in store["throughput"].get(key, {}).items():
        ok = [r for r in runs if "error" not in r]
        rows[name] = {
            "msgs": median([r["msgs_per_sec"] for r in ok]),
            "server_cpu": median([r.get("server_cpu", float("nan")) for r in ok]),
            "cpu_us": median([cpu_per_msg(r) for r in ok]),
            "p50": median([r["latency_us"]["p50"] for r in ok]) if ok else float("nan"),
            "p99": median([r["latency_us"]["p99"] for r in ok]) if ok else float("nan"),
            "by_rep": {r["rep"]: r["msgs_per_sec"] for r in ok},
            "runs": len(runs),
            "errors": len(runs) - len(ok),
        }
    return rows


def group_ratio(rows, a, b):
    """(ratio of the medians, median of the per-repetition ratios), NaN if missing."""
    nan = float("nan")
    if a not in rows or b not in rows or not rows[b]["msgs"] == rows[b]["msgs"] \
            or not rows[b]["msgs"]:
        return nan, nan
    ra, rb = rows[a]["by_rep"], rows[b]["by_rep"]
    paired = [ra[k] / rb[k] for k in ra if k in rb and rb[k]]
    return rows[a]["msgs"] / rows[b]["msgs"], median(paired)


def group_summary(group, store):
    """Lines of text: the ratios of a group, per case."""
    out = []
    for case in store["cases"]:
        rows = group_rows(store, case_key(*case))
        for a, b, what, target in GROUP_RATIOS[group]:
            med, paired = group_ratio(rows, a, b)
            why = store["not_run"].get(a, {}).get("echo") or store["not_run"].get(b, {}).get("echo")
            if med != med and not why:
                continue  # neither server was in this run
            if med != med:
                verdict = f"not measured ({why})"
            else:
                verdict = f"{med:.2f}x (per repetition, median {paired:.2f}x)"
                if target:
                    verdict += f", target >= {target:.2f}x: " + ("met" if med >= target else "MISSED")
            out.append(f"{size_name(case[0])} {case[1]} x {case[2]}: {what}: {verdict}")
        if group == "deflate" and "hybi-mio-deflate" in rows and "yawc-deflate" in rows:
            h, y = rows["hybi-mio-deflate"]["cpu_us"], rows["yawc-deflate"]["cpu_us"]
            if h == h and y == y and h:
                out.append(f"{size_name(case[0])} {case[1]} x {case[2]}: server CPU per "
                           f"message with deflate: hybi-mio {h:.2f} µs, yawc {y:.2f} µs "
                           f"({y / h:.2f}x hybi-mio's)")
    return out


def write_group_markdown(lines, group, store, meta_):
    if group == "tls":
        lines += ["", "## TLS (wss)", "",
                  "The same servers over TLS (rustls 0.23 on ring in every server and "
                  "client; a self-signed P-256 certificate made for the run, TLS 1.3, "
                  "X25519) and in plaintext, in one repetition loop. `hybi load "
                  "--insecure` (wss, no certificate verification) on core 1. "
                  "`CPU/msg` is the server's CPU time per echoed message."]
    else:
        lines += ["", "## permessage-deflate", "",
                  "1 KiB JSON-like text messages (`hybi load --json-payload --verify`, "
                  "64 different ones in turn), with `--deflate` on the servers that "
                  "agree to permessage-deflate (level 1, context takeover both ways, "
                  "15-bit windows on hybi-mio and yawc alike) and uncompressed, in one "
                  "repetition loop. `CPU/msg` is the server's CPU time per echoed "
                  "message. Each deflate server was first checked to agree to the "
                  "extension and to compress its echo:"]
        lines += [""]
        for name, c in store.get("checks", {}).items():
            lines.append(f"- {name}: `Sec-WebSocket-Extensions: {c['extensions']}`; a "
                         f"{c['payload']}-byte message echoed as {c['echo_on_wire']} "
                         "compressed bytes")
    for name, why in store.get("not_run", {}).items():
        lines.append("")
        lines.append(f"**{name} not measured** ({', '.join(why)}): {next(iter(why.values()))}")
    for case in store["cases"]:
        rows = group_rows(store, case_key(*case))
        if not rows:
            continue
        lines += ["", f"{size_name(case[0])}, {case[1]} connections x {case[2]} in flight, "
                  f"median of {meta_['reps']} repetitions of {meta_['secs']} s:", "",
                  "| server | msgs/s | server CPU | CPU/msg | p50 | p99 | runs |",
                  "|---|---|---|---|---|---|---|"]
        for name in store["servers"]:
            if name not in rows:
                continue
            r = rows[name]
            fail = f" **{r['errors']} failed**" if r["errors"] else ""
            lines.append(f"| {name} | {human(r['msgs'])} | {100 * r['server_cpu']:.0f}% | "
                         f"{r['cpu_us']:.2f} µs | {r['p50']:.0f} µs | {r['p99']:.0f} µs | "
                         f"{r['runs'] - r['errors']}/{r['runs']}{fail} |")
    summary = group_summary(group, store)
    if summary:
        lines += [""] + [f"- {line}" for line in summary]
    hs = store.get("handshakes", {})
    if hs:
        lines += ["", "Handshakes per second (as in the handshakes section; over TLS a full "
                  "TLS handshake each, X25519 and ECDSA P-256, no session resumption, the "
                  "client not verifying the certificate):", "",
                  "| server | handshakes/s | server CPU | client core | runs |",
                  "|---|---|---|---|---|"]
        for name in store["servers"]:
            ok = [r for r in hs.get(name, []) if "error" not in r]
            if name not in hs:
                continue
            busy = median([r.get("client_busy", float("nan")) for r in ok])
            lines.append(f"| {name} | {human(median([r['handshakes_per_sec'] for r in ok]))} | "
                         f"{median([r.get('server_cpu_us', float('nan')) for r in ok]):.1f} µs | "
                         f"{100 * busy:.0f}% | {len(ok)}/{len(hs[name])} |")
    mem = store.get("memory", {})
    if mem:
        lines += ["", f"Memory per idle connection ({meta_['idle_conns']:,} connections"
                  + ("; on the deflate servers the connections agreed to permessage-deflate "
                     "and `after one echo` is one 1 KiB text message inflated and its echo "
                     "compressed" if group == "deflate" else "") + "):", "",
                  "| server | after the handshake | after one echo |", "|---|---|---|"]
        for name in store["servers"]:
            if name not in mem:
                continue
            cells = [f"{r['bytes_per_conn'] / 1024:.1f} KiB" if "bytes_per_conn" in r
                     else r.get("error", "-") for r in (mem[name].get(k, {})
                                                        for k in ("idle", "echo"))]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} |")


COLORS = {
    "raw": "#9e9e9e",
    "hybi-mio": "#d62728",
    "hybi-std": "#ff9896",
    "hybi-tokio": "#ff7f0e",
    "tungstenite": "#1f77b4",
    "tokio-tungstenite": "#aec7e8",
    "fastwebsockets": "#2ca02c",
    "tokio-websockets": "#98df8a",
    "sockudo-ws": "#9467bd",
    UWS: "#8c564b",
}


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_svg(data, table, path):
    """Grouped bars, one panel per payload size, bars as % of the raw ceiling."""
    names = [s[0] for s in SERVERS]
    groups = [(c, i) for c in CONNS for i in INFLIGHT]
    sizes = [s for s in SIZES if any(c[0] == s for c in data["cases"])]
    bar_w, gap = 11, 18
    group_w = len(names) * bar_w + gap
    left, top, panel_h, panel_gap = 60, 70, 170, 70
    width = left + len(groups) * group_w + 20
    # The legend, in as many rows as the width needs.
    legend, x, y = [], left, 32
    for n in names:
        label = "raw TCP echo (ceiling)" if n == "raw" else n
        w = 14 + 7 * len(label) + 16
        if x > left and x + w - 16 > width - 20:
            x, y = left, y + 16
        legend.append((n, label, x, y))
        x += w
    top += y - 32
    height = top + len(sizes) * (panel_h + panel_gap) + 20
    ymax = 120.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">Echo over loopback: '
           'messages/s as % of the raw TCP echo ceiling (median of '
           f'{data["meta"]["reps"]} runs)</text>']
    for n, label, x, y in legend:
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{COLORS.get(n, "#777777")}"/>')
        out.append(f'<text x="{x + 14}" y="{y + 9}">{esc(label)}</text>')
    for p, size in enumerate(sizes):
        y0 = top + p * (panel_h + panel_gap)
        base = y0 + panel_h
        out.append(f'<text x="{left}" y="{y0 - 6}" font-weight="bold">{size_name(size)} '
                   'payload</text>')
        for pct in (0, 25, 50, 75, 100):
            y = base - panel_h * pct / ymax
            color = "#888" if pct == 100 else "#ddd"
            out.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" '
                       f'stroke="{color}" stroke-width="1"/>')
            out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{pct}%</text>')
        for g, (conns, inflight) in enumerate(groups):
            gx = left + g * group_w + gap / 2
            key = case_key(size, conns, inflight)
            row = table.get(key)
            if not row:
                continue
            raw = row.get("raw", {"msgs": float("nan")})["msgs"]
            for b, n in enumerate(names):
                v = row[n]["msgs"]
                if not (raw == raw and raw > 0 and v == v):
                    continue
                pct = min(100 * v / raw, ymax)
                h = panel_h * pct / ymax
                bx = gx + b * bar_w
                out.append(f'<rect x="{bx:.1f}" y="{base - h:.1f}" width="{bar_w - 1}" '
                           f'height="{h:.1f}" fill="{COLORS.get(n, "#777777")}"><title>{esc(n)} {size_name(size)} '
                           f'{conns} conns x {inflight}: {human(v)} msgs/s '
                           f'({100 * v / raw:.0f}%)</title></rect>')
            cx = gx + len(names) * bar_w / 2
            out.append(f'<text x="{cx:.1f}" y="{base + 14}" text-anchor="middle">'
                       f'{conns} x {inflight}</text>')
            out.append(f'<text x="{cx:.1f}" y="{base + 27}" text-anchor="middle" fill="#666">'
                       f'{human(raw)}/s</text>')
        out.append(f'<text x="{left - 8}" y="{base + 14}" text-anchor="end" fill="#444">'
                   'conns x in flight</text>')
        out.append(f'<text x="{left - 8}" y="{base + 27}" text-anchor="end" fill="#666">'
                   'ceiling</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# ---------------------------------------------------------------------------


def meta(args):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    others = subprocess.run(["sh", "-c", "pgrep -fa fuzz | grep -v pgrep | cut -c1-80 || true"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "reps": args.reps,
        "secs": args.secs,
        "idle_conns": args.idle_conns,
        "short_slice": args.short_slice,
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "others": "a fuzzer (" + str(len(others.splitlines())) + " processes)" if others else "none seen",
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI smoke run: a few short cases")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--secs", type=float, default=2.0)
    ap.add_argument("--hs-secs", type=float, default=2.0)
    ap.add_argument("--idle-conns", type=int, default=10000)
    ap.add_argument("--only", default="",
                    help="comma-separated parts: echo,handshakes,memory,tls,deflate "
                         "(tls and deflate run their own echo, handshakes and memory "
                         "cases; with only tls or deflate, all of theirs)")
    ap.add_argument("--servers", default="",
                    help="comma-separated server names (also of the tls and deflate "
                         "groups: hybi-mio-tls, tokio-tungstenite-tls, hybi-mio-deflate, "
                         "yawc, yawc-deflate, ...)")
    ap.add_argument("--cases", default="", help="comma-separated SIZE/CONNS/INFLIGHT")
    ap.add_argument("--report", metavar="JSON",
                    help="only write echo.md and echo.svg from an earlier run's JSON")
    ap.add_argument("--release", required=True, help="target/release")
    ap.add_argument("--bin", required=True, help="where the hybi example servers were copied")
    ap.add_argument("--out", required=True, help="directory for echo.md and echo.svg")
    ap.add_argument("--json", required=True, help="where to write all samples")
    ap.add_argument("--base-port", type=int, default=9310)
    ap.add_argument("--default-slice", action="store_true",
                    help="keep the scheduler's default time slice (see short_slice)")
    args = ap.parse_args()
    args.short_slice = False if args.default_slice else short_slice()
    if not args.default_slice and not args.short_slice:
        print("note: could not set a short scheduler slice; results are more exposed "
              "to other processes on the cores", file=sys.stderr)

    global SERVERS, TLS_SERVERS, DEFLATE_SERVERS
    if args.report:
        with open(args.report) as f:
            data = json.load(f)
        data["cases"] = [tuple(c) for c in data["cases"]]
        # Only the servers that the run measured (an older run has no uWebSockets.js).
        ran = {n for row in data["throughput"].values() for n in row} | set(data.get("memory", {}))
        if ran:
            SERVERS = [s for s in SERVERS if s[0] in ran]
        table = summarize(data)
        os.makedirs(args.out, exist_ok=True)
        write_svg(data, table, os.path.join(args.out, "echo.svg"))
        write_markdown(data, table, os.path.join(args.out, "echo.md"))
        print(f"wrote {args.out}/echo.md and {args.out}/echo.svg from {args.report}")
        return
    if args.servers:
        wanted = args.servers.split(",")
        SERVERS = [s for s in SERVERS if s[0] in wanted]
        TLS_SERVERS = [s for s in TLS_SERVERS if s[0] in wanted]
        DEFLATE_SERVERS = [s for s in DEFLATE_SERVERS if s[0] in wanted]
    skipped = {}
    if any(s[0] == UWS for s in SERVERS):
        why = uws_skip_reason()
        if why:
            skipped[UWS] = why
            SERVERS = [s for s in SERVERS if s[0] != UWS]
            print(f"*** {UWS} SKIPPED: {why}", file=sys.stderr, flush=True)
    parts = (set(args.only.split(",")) if args.only
             else {"echo", "handshakes", "memory", "tls", "deflate"})
    unknown = parts - {"echo", "handshakes", "memory", "tls", "deflate"}
    if unknown:
        ap.error(f"unknown parts: {','.join(sorted(unknown))}")
    # What the tls and deflate groups run: the parts named beside them, or all.
    group_parts = parts & {"echo", "handshakes", "memory"} or {"echo", "handshakes", "memory"}
    tls_cases, deflate_cases = TLS_CASES, DEFLATE_CASES
    if args.quick:
        args.reps, args.secs, args.hs_secs, args.idle_conns = 1, 0.5, 0.5, 200
        cases = [(16, 64, 16), (65536, 1, 1), (1024, 1000, 1)]
        # A small case on each TLS and each deflate server: do they answer?
        tls_cases = deflate_cases = [(1024, 8, 4)]
        TLS_SERVERS = [s for s in TLS_SERVERS if spec_opts(s).get("tls")]
        DEFLATE_SERVERS = [s for s in DEFLATE_SERVERS if spec_opts(s).get("deflate")]
    else:
        cases = [(s, c, i) for s in SIZES for c in CONNS for i in INFLIGHT]
    if args.cases:
        cases = [tuple(int(x) for x in c.split("/")) for c in args.cases.split(",")]
    paths = {"R": args.release, "B": args.bin, "{NODE}": os.environ.get("ECHO_NODE", "node")}
    hybi = os.path.join(args.release, "hybi")
    log_dir = os.path.join(os.path.dirname(args.json) or ".", "logs")
    os.makedirs(log_dir, exist_ok=True)

    data = {"meta": meta(args), "cases": cases, "throughput": {}, "handshakes": {},
            "memory": {}}
    if skipped:
        data["meta"]["skipped"] = skipped
    failures = []
    t0 = time.time()

    def save():
        data["meta"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)

    if parts & {"echo", "handshakes"} and SERVERS:
        servers = []
        try:
            for i, spec in enumerate(SERVERS):
                servers.append(Server(spec, args.base_port + i, paths, log_dir))
            for rep in range(args.reps):
                order = servers[rep % len(servers):] + servers[:rep % len(servers)]
                if "echo" in parts:
                    for case in cases:
                        key = case_key(*case)
                        for server in order:
                            r = run_load(hybi, server, *case, args.secs)
                            r["rep"] = rep
                            data["throughput"].setdefault(key, {}).setdefault(
                                server.name, []).append(r)
                            status = r.get("error", "")
                            print(f"[{time.time() - t0:6.0f}s] rep {rep + 1}/{args.reps} "
                                  f"{size_name(case[0]):>6} {case[1]:>4} conns x {case[2]:>2} "
                                  f"{server.name:<18} {human(r['msgs_per_sec']):>9} msgs/s "
                                  f"srv cpu {100 * r.get('server_cpu', float('nan')):4.0f}% "
                                  f"load cpu {100 * r.get('client_cpu', float('nan')):4.0f}% "
                                  f"cores busy {100 * r.get('cpu0_busy', float('nan')):3.0f}%"
                                  f"/{100 * r.get('cpu1_busy', float('nan')):3.0f}% "
                                  f"{status}", flush=True)
                            if status:
                                failures.append(f"{server.name} {key}: {status}")
                            if not server.alive():
                                raise RuntimeError(f"{server.name} died")
                        save()
                if "handshakes" in parts:
                    hs_servers = [s for s in order if s.name != "raw"]
                    for server in hs_servers:
                        r = run_handshakes(os.path.join(args.release, "handshakes"), server,
                                           args.hs_secs)
                        r["rep"] = rep
                        data["handshakes"].setdefault(server.name, []).append(r)
                        print(f"[{time.time() - t0:6.0f}s] rep {rep + 1}/{args.reps} handshakes "
                              f"{server.name:<18} {human(r['handshakes_per_sec']):>9}/s "
                              f"server {r.get('server_cpu_us', float('nan')):5.1f} µs "
                              f"client core {100 * r.get('client_busy', float('nan')):3.0f}% "
                              f"{r.get('error', '')}", flush=True)
                        if "error" in r:
                            failures.append(f"{server.name} handshakes: {r['error']}")
                    save()
        finally:
            for s in servers:
                s.stop()

    if "memory" in parts and SERVERS:
        port = args.base_port + 50
        for spec in SERVERS:
            entry = data["memory"].setdefault(spec[0], {})
            for kind in ("idle", "echo"):
                port += 1
                r = run_memory(paths, spec, port, args.idle_conns, kind == "echo", log_dir)
                entry[kind] = r
                msg = (f"{r['bytes_per_conn'] / 1024:.2f} KiB/conn "
                       f"({r['rss_before_kib']} -> {r['rss_after_kib']} KiB)"
                       if "bytes_per_conn" in r else r["error"])
                print(f"[{time.time() - t0:6.0f}s] memory {spec[0]:<18} {kind:<4} {msg}",
                      flush=True)
                if "error" in r:
                    failures.append(f"{spec[0]} memory {kind}: {r['error']}")
        save()

    if "tls" in parts and TLS_SERVERS:
        try:
            paths["{CERT}"], paths["{KEY}"] = make_cert(os.path.join(args.bin, "tls"))
            no_load, no_mio = tls_interface(hybi, paths, log_dir, args.base_port + 99)
        except (OSError, subprocess.CalledProcessError) as e:
            why = f"no certificate: openssl failed ({e})"
            no_load = no_mio = why
            paths["{CERT}"] = paths["{KEY}"] = "/nonexistent"
        tls_specs = [s for s in TLS_SERVERS]
        no_server = {s[0]: no_mio for s in tls_specs if no_mio and spec_opts(s).get("mio_tls")}
        no_server.update({s[0]: no_load for s in tls_specs
                          if no_load and no_load.startswith("no certificate")
                          and spec_opts(s).get("tls")})
        no_echo = {s[0]: no_load for s in tls_specs if no_load and spec_opts(s).get("tls")}
        for why in {w for w in (no_load, no_mio) if w}:
            print(f"\n*** tls: {why}\n*** the TLS cases that need it FAIL (see FAILURES at "
                  "the end)\n", file=sys.stderr, flush=True)
        data["tls"] = run_group("tls", tls_specs, tls_cases, args, paths, hybi, log_dir, t0,
                                failures, args.base_port + 100, group_parts, no_server, no_echo)
        save()
    if "deflate" in parts and DEFLATE_SERVERS:
        def check(server):
            if server.name.endswith("-deflate"):
                return deflate_probe(server.port, server.path)
            return None
        # No handshakes here: the handshake client offers no extension.
        data["deflate"] = run_group("deflate", DEFLATE_SERVERS, deflate_cases, args, paths,
                                    hybi, log_dir, t0, failures, args.base_port + 130,
                                    group_parts - {"handshakes"}, check=check)
        data["deflate"]["checks"] = {k: v for k, v in data["deflate"]["checks"].items() if v}
        save()

    save()
    table = summarize(data)
    os.makedirs(args.out, exist_ok=True)
    for group in ("tls", "deflate"):
        if group in data:
            for line in group_summary(group, data[group]):
                print(f"{group}: {line}")
    if "echo" in parts and SERVERS:
        write_svg(data, table, os.path.join(args.out, "echo.svg"))
    write_markdown(data, table, os.path.join(args.out, "echo.md"))
    print(f"wrote {args.json}, {args.out}/echo.md" +
          (f", {args.out}/echo.svg" if "echo" in parts and SERVERS else "") +
          f" in {time.time() - t0:.0f}s")
    for name, why in skipped.items():
        print(f"*** {name} was SKIPPED: {why}", file=sys.stderr)
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
