#!/usr/bin/env python3
"""Echo benchmarks over loopback: the driver behind benches/run-echo.sh.

Runs every echo server pinned to core 0 and the clients pinned to core 1:

- throughput: `hybi load` (payload x connections x in flight), every server in each
  repetition, in a rotating order so that a burst of other load hits them alike; the
  median of the repetitions is reported, with the server's and the client's CPU use
  sampled between the load generator's progress ticks;
- handshakes per second: `handshakes` (open, close, repeat, 32 at a time);
- memory per idle connection: the server's RSS with N idle connections held by
  `idle-clients` (a separate process) minus its RSS before, over N.

Writes a JSON file with every sample, a markdown report and an SVG bar chart.
Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time

SERVERS = [
    # name, command (ADDR is replaced), URL path, extra load flags
    ("raw", ["{R}/echo-raw", "ADDR"], "/echo", ["--accept-masked"]),
    ("hybi-mio", ["{B}/mio-echo-server", "ADDR", "--workers", "1"], "/echo", []),
    ("hybi-std", ["{B}/std-echo-server", "ADDR"], "/echo", []),
    ("tungstenite", ["{R}/echo-tungstenite", "ADDR"], "/echo", []),
    ("tokio-tungstenite", ["{R}/echo-tokio-tungstenite", "ADDR"], "/echo", []),
    ("fastwebsockets", ["{R}/echo-fastwebsockets", "ADDR"], "/echo", []),
]
PEERS = ["tungstenite", "tokio-tungstenite", "fastwebsockets"]
# A thread per connection: threads that end during the window take their CPU time
# with them, so no CPU figure is shown for these.
THREADED = {"hybi-std", "tungstenite"}
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


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_listening(port, timeout=10.0):
    until = time.time() + timeout
    while time.time() < until:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    def __init__(self, spec, port, paths, log_dir):
        self.name, cmd, self.path, self.load_flags = spec
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        argv = [a.replace("{R}", paths["R"]).replace("{B}", paths["B"]) for a in cmd]
        argv = [self.addr if a == "ADDR" else a for a in argv]
        self.log = open(os.path.join(log_dir, f"{self.name}-{port}.log"), "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0"] + argv, stdout=self.log, stderr=self.log
        )
        if not wait_listening(port):
            self.stop()
            raise RuntimeError(f"{self.name} did not start listening on {self.addr}")

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
    url = f"ws://{server.addr}{server.path}"
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
    names = [s[0] for s in SERVERS]
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
        "",
        "Messages per second echoed (each way). `ceiling` is the raw TCP echo "
        "(handshake, then bytes back verbatim). Percentages are of the ceiling in the "
        "same run. `cpu` is the server's CPU use (of one core) during the window; "
        "`load core` is how busy core 1 (the load generator's) was during the "
        "ceiling's run (/proc/stat, softirq included): near 100%, `hybi load` is what "
        "limits the ceiling.",
        "",
        "| payload | conns | in flight | " + " | ".join(
            ("ceiling" if n == "raw" else n) for n in names)
        + " | hybi-mio / best peer | hybi-std / tungstenite | load core (ceiling) |",
        "|" + "---|" * (3 + len(names) + 3),
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
            if row[n]["errors"]:
                cell += f" **{row[n]['errors']} failed**"
            cells.append(cell)
        best = max((row[p]["msgs"] for p in PEERS
                    if p in row and row[p]["msgs"] == row[p]["msgs"]), default=float("nan"))
        nan = {"msgs": float("nan"), "core1_busy": float("nan")}
        mio, std, tung = (row.get(n, nan) for n in ("hybi-mio", "hybi-std", "tungstenite"))
        vs_peer = mio["msgs"] / best if best and best == best else float("nan")
        vs_tung = std["msgs"] / tung["msgs"] if tung["msgs"] else float("nan")
        ccpu = row.get("raw", nan)["core1_busy"]
        lines.append(
            f"| {size_name(case[0])} | {case[1]} | {case[2]} | " + " | ".join(cells)
            + f" | {vs_peer:.2f}x | {vs_tung:.2f}x | "
            + (f"{100 * ccpu:.0f}%" if ccpu == ccpu else "-") + " |"
        )
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
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


COLORS = {
    "raw": "#9e9e9e",
    "hybi-mio": "#d62728",
    "hybi-std": "#ff9896",
    "tungstenite": "#1f77b4",
    "tokio-tungstenite": "#aec7e8",
    "fastwebsockets": "#2ca02c",
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
    height = top + len(sizes) * (panel_h + panel_gap) + 20
    ymax = 120.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">Echo over loopback: '
           'messages/s as % of the raw TCP echo ceiling (median of '
           f'{data["meta"]["reps"]} runs)</text>']
    x = left
    for n in names:
        out.append(f'<rect x="{x}" y="32" width="10" height="10" fill="{COLORS[n]}"/>')
        label = "raw TCP echo (ceiling)" if n == "raw" else n
        out.append(f'<text x="{x + 14}" y="41">{esc(label)}</text>')
        x += 14 + 7 * len(label) + 16
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
                           f'height="{h:.1f}" fill="{COLORS[n]}"><title>{esc(n)} {size_name(size)} '
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
    ap.add_argument("--only", default="", help="comma-separated parts: echo,handshakes,memory")
    ap.add_argument("--servers", default="", help="comma-separated server names")
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

    global SERVERS
    if args.report:
        with open(args.report) as f:
            data = json.load(f)
        data["cases"] = [tuple(c) for c in data["cases"]]
        table = summarize(data)
        os.makedirs(args.out, exist_ok=True)
        write_svg(data, table, os.path.join(args.out, "echo.svg"))
        write_markdown(data, table, os.path.join(args.out, "echo.md"))
        print(f"wrote {args.out}/echo.md and {args.out}/echo.svg from {args.report}")
        return
    if args.servers:
        wanted = args.servers.split(",")
        SERVERS = [s for s in SERVERS if s[0] in wanted]
    parts = set(args.only.split(",")) if args.only else {"echo", "handshakes", "memory"}
    if args.quick:
        args.reps, args.secs, args.hs_secs, args.idle_conns = 1, 0.5, 0.5, 200
        cases = [(16, 64, 16), (65536, 1, 1), (1024, 1000, 1)]
    else:
        cases = [(s, c, i) for s in SIZES for c in CONNS for i in INFLIGHT]
    if args.cases:
        cases = [tuple(int(x) for x in c.split("/")) for c in args.cases.split(",")]
    paths = {"R": args.release, "B": args.bin}
    hybi = os.path.join(args.release, "hybi")
    log_dir = os.path.join(os.path.dirname(args.json) or ".", "logs")
    os.makedirs(log_dir, exist_ok=True)

    data = {"meta": meta(args), "cases": cases, "throughput": {}, "handshakes": {},
            "memory": {}}
    failures = []
    t0 = time.time()

    def save():
        data["meta"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)

    if parts & {"echo", "handshakes"}:
        servers = [Server(spec, args.base_port + i, paths, log_dir)
                   for i, spec in enumerate(SERVERS)]
        try:
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

    if "memory" in parts:
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

    save()
    table = summarize(data)
    os.makedirs(args.out, exist_ok=True)
    if "echo" in parts:
        write_svg(data, table, os.path.join(args.out, "echo.svg"))
    write_markdown(data, table, os.path.join(args.out, "echo.md"))
    print(f"wrote {args.json}, {args.out}/echo.md" +
          (f", {args.out}/echo.svg" if "echo" in parts else "") +
          f" in {time.time() - t0:.0f}s")
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
