"""Hostile raw-socket tests against a server implementing the .ci/peers contract.

Standard library only. Each test opens a TCP connection to /echo, does a valid opening
handshake, then breaks the protocol, and checks that the server answers with a close
frame carrying the right code (RFC 6455 §7.4.1) and then closes the TCP connection.

Usage: hostile.py [HOST:PORT [TEST,...]]   (default 127.0.0.1:9010, every test)

Prints `RESULT <test> PASS` or `RESULT <test> FAIL <why>` per test; exits 1 if any
failed. Environment: HOSTILE_STORM (handshakes in the storm test, default 10000),
HOSTILE_STORM_THREADS (default 4).
"""

import base64
import hashlib
import os
import socket
import struct
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WAIT = 3.0  # seconds for the close frame, and again for the end of TCP


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


# --- frames ---------------------------------------------------------------------------

def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """A client frame; `length` overrides the announced payload length."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 1 << 16:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Conn:
    """A raw client connection after a valid handshake."""

    def __init__(self, addr, path="/echo"):
        host, port = addr
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            b"GET " + path.encode() + b" HTTP/1.1\r\n"
            b"Host: " + f"{host}:{port}".encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            check(chunk, f"connection closed during the handshake: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        check(lines[0].startswith("HTTP/1.1 101"), f"handshake answered {lines[0]!r}")
        want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        check(headers.get("sec-websocket-accept") == want, f"bad Sec-WebSocket-Accept in {headers}")

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail(f"no {what} within {WAIT} s")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise Fail(f"no {what} within {WAIT} s") from None
        except ConnectionResetError:
            raise Fail(f"connection reset while waiting for {what}") from None
        check(chunk, f"connection closed (EOF) while waiting for {what}")
        self.buf += chunk

    def read_frame(self, what="frame"):
        """(fin, rsv, opcode, payload) of the next server frame."""
        deadline = time.monotonic() + WAIT
        while len(self.buf) < 2:
            self._fill(deadline, what)
        b0, b1 = self.buf[0], self.buf[1]
        check(not b1 & 0x80, "the server sent a masked frame")
        n, off = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill(deadline, what)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill(deadline, what)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < off + n:
            self._fill(deadline, what)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload

    def expect_close(self, code):
        """The next frame is a close with `code`; then the server ends TCP."""
        fin, rsv, op, payload = self.read_frame(f"close frame with {code}")
        if op != 0x8:
            raise Fail(f"got opcode {op:#x} ({len(payload)} bytes), expected a close frame with {code}")
        check(fin and rsv == 0, f"close frame with fin={fin} rsv={rsv}")
        check(len(payload) >= 2, f"close frame without a code (payload {payload!r}), expected {code}")
        got = struct.unpack("!H", payload[:2])[0]
        reason = payload[2:].decode("utf-8", "replace")
        check(got == code, f"close code {got} ({reason!r}), expected {code}")
        eof = self.expect_eof()
        return f"close {got} {reason!r}, then TCP {eof}"

    def expect_eof(self):
        """The server closes the TCP connection (without our close answer)."""
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail(f"the server did not close the TCP connection within {WAIT} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return "RST"
            if not chunk:
                return "FIN"
            raise Fail(f"{len(chunk)} more bytes after the close frame: {chunk[:40]!r}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- tests ------------------------------------------------------------------------------

def with_conn(fn):
    def run(addr):
        c = Conn(addr)
        try:
            return fn(c)
        finally:
            c.close()

    run.__name__ = fn.__name__
    return run


@with_conn
def unmasked_frame(c):
    c.send(frame(0x1, b"hello", mask=False))
    return c.expect_close(1002)


@with_conn
def invalid_utf8(c):
    c.send(frame(0x1, b"valid, then \xce\xba\xff\xfe invalid"))
    return c.expect_close(1007)


@with_conn
def huge_length(c):
    # 2^63-1: the largest length RFC 6455 allows in the header; far above any limit.
    c.send(frame(0x2, length=(1 << 63) - 1))
    return c.expect_close(1009)


@with_conn
def utf8_mid_fragment(c):
    """Fragments 1 and 2 are valid (2 ends inside 'κ', 3 completes it); fragment 3 has
    an invalid byte in its middle. The 1007 must arrive before fragment 4 is sent."""
    c.send(frame(0x1, b"first fragment ", fin=False))
    c.send(frame(0x0, b"second fragment \xce", fin=False))
    third = b"\xba" + b"a" * 99 + b"\xff" + b"b" * 99
    c.send(frame(0x0, third, fin=False))
    return c.expect_close(1007)
    try:
        c.send(frame(0x0, b"fourth and last", fin=True))
    except OSError:
        pass


@with_conn
def utf8_mid_frame(c):
    """Fail fast inside a frame: the third fragment announces 200 bytes but only the
    first 101, ending with the invalid byte, are sent. The 1007 must come without the
    rest of the frame (DESIGN.md: "fails fast, even mid-fragment")."""
    c.send(frame(0x1, b"first fragment ", fin=False))
    c.send(frame(0x0, b"second fragment ", fin=False))
    third = frame(0x0, b"a" * 100 + b"\xff" + b"b" * 99, fin=False)
    c.send(third[: len(third) - 99])
    return c.expect_close(1007)


@with_conn
def ping_126(c):
    c.send(frame(0x9, b"p" * 126))
    return c.expect_close(1002)


@with_conn
def reserved_opcode(c):
    c.send(frame(0x3, b"data frame opcode 3 is reserved"))
    return c.expect_close(1002)


@with_conn
def reserved_control_opcode(c):
    c.send(frame(0xB, b"control opcode 0xB is reserved"))
    return c.expect_close(1002)


@with_conn
def rsv_bits(c):
    c.send(frame(0x1, b"rsv1 without an extension", rsv=4))
    return c.expect_close(1002)


@with_conn
def fragmented_ping(c):
    c.send(frame(0x9, b"ping", fin=False))
    return c.expect_close(1002)


@with_conn
def continuation_without_start(c):
    c.send(frame(0x0, b"orphan", fin=True))
    return c.expect_close(1002)


@with_conn
def new_message_inside_fragmented(c):
    c.send(frame(0x1, b"start ", fin=False))
    c.send(frame(0x1, b"another start", fin=True))
    return c.expect_close(1002)


@with_conn
def close_code_1005(c):
    c.send(frame(0x8, struct.pack("!H", 1005)))
    return c.expect_close(1002)


@with_conn
def close_one_byte(c):
    c.send(frame(0x8, b"\x03"))
    return c.expect_close(1002)


@with_conn
def close_reason_invalid_utf8(c):
    c.send(frame(0x8, struct.pack("!H", 1000) + b"bye \xff"))
    return c.expect_close(1007)


BAD_KEYS = [
    ("short", b"Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"),          # 10 bytes
    ("15-bytes", b"Sec-WebSocket-Key: " + base64.b64encode(b"x" * 15) + b"\r\n"),
    ("17-bytes", b"Sec-WebSocket-Key: " + base64.b64encode(b"x" * 17) + b"\r\n"),
    ("not-base64", b"Sec-WebSocket-Key: !!not*base64*at*all!!!==\r\n"),
    ("empty", b"Sec-WebSocket-Key: \r\n"),
    ("missing", b""),
]


def bad_handshake(addr, key_line):
    """One upgrade request with a bad key; returns the status line of the answer."""
    host, port = addr
    s = socket.create_connection(addr, timeout=10)
    try:
        s.sendall(
            b"GET /echo HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n" + key_line +
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode("latin-1")
    finally:
        s.close()


def handshake_storm(addr):
    """HOSTILE_STORM handshakes with bad keys, each answered 400, while a normal
    client on /echo keeps getting its messages echoed."""
    total = int(os.environ.get("HOSTILE_STORM", "10000"))
    threads = int(os.environ.get("HOSTILE_STORM_THREADS", "4"))
    for name, line in BAD_KEYS:  # each kind once, for a precise message
        status = bad_handshake(addr, line)
        check(status.startswith("HTTP/1.1 400"), f"bad key ({name}) answered {status!r}, expected 400")

    echo = Conn(addr)
    stop = threading.Event()
    stats = {"echoes": 0, "max_latency": 0.0, "error": None}

    def echo_loop():
        i = 0
        try:
            while not stop.is_set():
                msg = f"still here {i}".encode()
                t0 = time.monotonic()
                echo.send(frame(0x1, msg))
                fin, _, op, payload = echo.read_frame("echo during the storm")
                check(op == 0x1 and fin and payload == msg, f"echo {op:#x} {payload!r}, expected {msg!r}")
                stats["max_latency"] = max(stats["max_latency"], time.monotonic() - t0)
                stats["echoes"] += 1
                i += 1
                time.sleep(0.005)
        except Exception as e:  # reported by the main thread
            stats["error"] = e

    answers = {}
    lock = threading.Lock()
    counter = iter(range(total))

    def storm():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            name, line = BAD_KEYS[i % len(BAD_KEYS)]
            try:
                status = bad_handshake(addr, line)
            except OSError as e:
                status = f"error: {e}"
            status = status[:12] if status.startswith("HTTP/") else status or "EOF"
            with lock:
                answers[(name, status)] = answers.get((name, status), 0) + 1

    t0 = time.monotonic()
    echoer = threading.Thread(target=echo_loop)
    echoer.start()
    workers = [threading.Thread(target=storm) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - t0
    stop.set()
    echoer.join()
    echo.send(frame(0x8, struct.pack("!H", 1000)))
    echo.close()
    wrong = {k: v for k, v in answers.items() if not k[1].startswith("HTTP/1.1 400")}
    answered = sum(answers.values())
    check(answered == total, f"{answered} of {total} handshakes attempted")
    detail = (f"{total} bad handshakes in {elapsed:.1f} s, {stats['echoes']} echoes meanwhile, "
              f"slowest echo {stats['max_latency'] * 1000:.0f} ms")
    check(not wrong, f"answers other than 400: {wrong} ({detail})")
    check(stats["error"] is None, f"the normal client failed: {stats['error']} ({detail})")
    check(stats["echoes"] >= 10, f"too few echoes ({detail})")
    check(stats["max_latency"] < 2.0, f"an echo took over 2 s ({detail})")
    return detail


TESTS = [
    ("unmasked_frame", unmasked_frame),
    ("invalid_utf8", invalid_utf8),
    ("length_2^63-1", huge_length),
    ("utf8_mid_fragment", utf8_mid_fragment),
    ("utf8_mid_frame", utf8_mid_frame),
    ("ping_126_bytes", ping_126),
    ("reserved_opcode", reserved_opcode),
    ("reserved_control_opcode", reserved_control_opcode),
    ("rsv_bits", rsv_bits),
    ("fragmented_ping", fragmented_ping),
    ("continuation_without_start", continuation_without_start),
    ("new_message_inside_fragmented", new_message_inside_fragmented),
    ("close_code_1005", close_code_1005),
    ("close_one_byte", close_one_byte),
    ("close_reason_invalid_utf8", close_reason_invalid_utf8),
    ("bad_key_storm", handshake_storm),
]


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9010"
    host, port = addr.rsplit(":", 1)
    addr = (host, int(port))
    only = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    failed = 0
    for name, run in TESTS:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        try:
            detail = run(addr)
            outcome = "PASS" + (f" {detail}" if detail else "")
        except Fail as e:
            outcome = f"FAIL {e}"
        except Exception as e:
            outcome = f"FAIL {type(e).__name__}: {e}"
        if not outcome.startswith("PASS"):
            failed += 1
        print(f"RESULT {name} {outcome} ({int((time.monotonic() - t0) * 1000)} ms)", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
