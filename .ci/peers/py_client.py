"""The .ci/peers client scenarios, run with Python `websockets` (asyncio API).

Usage: py_client.py [BASE_URL [SCENARIO,...]]   (default ws://127.0.0.1:9010)

Prints `RESULT <scenario> PASS` or `RESULT <scenario> FAIL <why>` per scenario and
exits with 1 if any failed. The scenario names and order match the other clients.

PEERS_DEFLATE=1 is the deflate mode: every connection offers permessage-deflate
(websockets' defaults, `compression="deflate"`; it compresses every message), and
`deflate_negotiated` asserts the server agreed. PEERS_DEFLATE=0 or unset: plain,
`compression=None`, except on `deflate_negotiated`'s connection, which offers it all the
same: the server (compression off) must decline.

A wss:// BASE_URL (the TLS mode, PEERS_TLS=1) checks the server's certificate against
the CA certificate in the PEM file PEERS_TLS_CA.
"""

import asyncio
import os
import ssl
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.extensions.permessage_deflate import PerMessageDeflate

MAX_SIZE = 64 << 20
TIMEOUT = 60  # per scenario, seconds
UTF8_TEXT = "Hello, κόσμε! 🚀 👩‍💻 ∑ — ok"


def deflate_mode():
    value = os.environ.get("PEERS_DEFLATE", "")
    if value not in ("", "0", "1"):
        sys.exit(f"py_client: PEERS_DEFLATE must be 1 or 0, not {value!r}")
    return value == "1"


DEFLATE = deflate_mode()


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


def describe(m):
    if isinstance(m, str):
        return f"text of {len(m.encode())} bytes"
    return f"binary of {len(m)} bytes"


def tls_context(base):
    if not base.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=os.environ["PEERS_TLS_CA"])


def opener(base):
    ctx = tls_context(base)

    def open_(path, **kw):
        kw.setdefault("compression", "deflate" if DEFLATE else None)
        if ctx is not None:
            kw.setdefault("ssl", ctx)
        return connect(
            base + path,
            max_size=MAX_SIZE,
            open_timeout=10,
            close_timeout=10,
            ping_interval=None,
            **kw,
        )

    return open_


async def expect(ws, want):
    got = await asyncio.wait_for(ws.recv(), 30)
    if isinstance(want, str):
        check(isinstance(got, str), f"echo {describe(got)}, expected text")
        check(got == want, f"echo {got!r}, expected {want!r}")
    else:
        check(isinstance(got, bytes), f"echo {describe(got)}, expected binary")
        if got != want:
            first = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), None)
            raise Fail(f"echo of {len(got)} bytes differs from the {len(want)} sent "
                       f"(first difference at {first})")


async def close_and_time(ws, code, reason):
    """Close; the server must answer and then close TCP itself (websockets, as client,
    waits for that up to close_timeout before closing it on its own)."""
    t0 = time.monotonic()
    await ws.close(code, reason)
    took = time.monotonic() - t0
    check(took < 3, f"closing took {took:.1f} s: the server did not close the TCP connection")


async def finish(ws):
    """Close with 1000 and check the server answered with 1000."""
    await close_and_time(ws, 1000, "done")
    rcvd = ws.protocol.close_rcvd
    check(rcvd is not None, "no close frame from the server")
    check(rcvd.code == 1000, f"close answer {rcvd.code} {rcvd.reason!r}, expected 1000")


def compressible_text():
    """64 KiB of text that compresses well: 2048 lines of 32 bytes, each with its
    number, Greek and an emoji."""
    return "".join(f"{i:04x}:κόσμε🚀 compressible" for i in range(2048))


def mostly_zeros():
    """1 MiB, mostly zeros: 16 random bytes at the start of every 4 KiB."""
    data = bytearray(1 << 20)
    for i in range(0, len(data), 4096):
        data[i:i + 16] = os.urandom(16)
    return bytes(data)


async def deflate_negotiated(open_):
    """Deflate mode: /echo agreed permessage-deflate, and compressible messages echo
    exactly, then an empty message and a message with an empty last fragment, each
    followed by another. Plain mode: offered all the same, the server declines it, and
    the same messages echo uncompressed."""
    async with open_("/echo", compression="deflate") as ws:
        answer = ws.response.headers.get("Sec-WebSocket-Extensions")
        print(f"INFO deflate_negotiated Sec-WebSocket-Extensions: "
              f"{'(none)' if answer is None else repr(answer)}", flush=True)
        active = [e for e in ws.protocol.extensions if isinstance(e, PerMessageDeflate)]
        if DEFLATE:
            check(answer is not None and answer.split(";")[0].strip() == "permessage-deflate",
                  f"permessage-deflate offered but not agreed (Sec-WebSocket-Extensions: {answer!r})")
            check(active, f"the answer {answer!r} did not turn the extension on")
        else:
            check(answer is None and not active,
                  f"the server agreed {answer!r} though it has compression off (plain mode)")
        text = compressible_text()
        check(len(text.encode()) == 64 << 10, "the test text is not 64 KiB")
        await ws.send(text)
        got = await asyncio.wait_for(ws.recv(), 30)
        check(got == text, f"echo {describe(got)}, expected the 64 KiB of text sent")
        data = mostly_zeros()
        await ws.send(data)
        await expect(ws, data)
        # Nothing to compress after a flush: an empty message, and a message whose
        # last fragment is empty, each followed by one more (the stream must stay in
        # step). websockets ends every fragmented message with an empty frame anyway.
        for text in ["", "after an empty message"]:
            await ws.send(text)
            await expect(ws, text)
        parts = ["two fragments, ", "then an empty one", ""]
        await ws.send(parts)
        await expect(ws, "".join(parts))
        await ws.send("after an empty last fragment")
        await expect(ws, "after an empty last fragment")
        await finish(ws)


async def text_utf8(open_):
    async with open_("/echo") as ws:
        for text in [UTF8_TEXT, "plain ascii", "κόσμε", "🎉🎉🎉"]:
            await ws.send(text)
            await expect(ws, text)
        await finish(ws)


async def text_empty(open_):
    async with open_("/echo") as ws:
        await ws.send("")
        await expect(ws, "")
        await finish(ws)


async def text_big(open_):
    text = "κόσμε🚀a" * 70_000
    async with open_("/echo") as ws:
        await ws.send(text)
        got = await asyncio.wait_for(ws.recv(), 30)
        check(got == text, f"echo {describe(got)}, expected the {len(text.encode())} bytes sent")
        await finish(ws)


def binary(n):
    async def run(open_):
        async with open_("/echo") as ws:
            data = os.urandom(n)
            await ws.send(data)
            await expect(ws, data)
            await finish(ws)

    return run


async def burst(open_):
    async with open_("/echo") as ws:
        async def sender():
            for i in range(1000):
                await ws.send(f"message {i} κόσμε")

        task = asyncio.create_task(sender())
        for i in range(1000):
            await expect(ws, f"message {i} κόσμε")
        await task
        await finish(ws)


async def fragmented_text(open_):
    data = UTF8_TEXT.encode()
    cuts = [0, 8, 22, 30, len(data)]  # inside 'κ' and inside '🚀'
    async with open_("/echo") as ws:
        await ws.send([data[a:b] for a, b in zip(cuts, cuts[1:])], text=True)
        await expect(ws, UTF8_TEXT)
        await finish(ws)


async def fragmented_binary(open_):
    data = os.urandom(70_000)
    cuts = [0, 1, 1000, 1000, 66_000, len(data)]
    async with open_("/echo") as ws:
        await ws.send([data[a:b] for a, b in zip(cuts, cuts[1:])])
        await expect(ws, data)
        await finish(ws)


async def fragmented_with_ping(open_):
    parts = ["first κό", "σμε second", " third"]
    async with open_("/echo") as ws:
        waiters = []

        async def fragments():
            yield parts[0]
            waiters.append(await ws.ping(b"between fragments"))
            yield parts[1]
            yield parts[2]

        await ws.send(fragments())
        await expect(ws, "".join(parts))
        check(len(waiters) == 1, "the ping was not sent")
        await asyncio.wait_for(waiters[0], 10)
        await finish(ws)


async def ping_pong(open_):
    payload = "ping κόσμε 123".encode()
    async with open_("/echo") as ws:
        # websockets completes the waiter only for a pong carrying this payload.
        waiter = await ws.ping(payload)
        await asyncio.wait_for(waiter, 10)
        await ws.send("after ping")
        await expect(ws, "after ping")
        await finish(ws)


async def server_ping(open_):
    async with open_("/ping") as ws:
        await ws.send("ping me")
        await expect(ws, "pong: server ping κόσμε")
        await finish(ws)


async def close_from_client(open_):
    await close_and_report(open_, 4001, "client bye")


async def close_reason_utf8(open_):
    """The longest close reason (123 bytes), in two-byte characters."""
    await close_and_report(open_, 4003, "é" * 61 + "!")


async def close_and_report(open_, code, reason):
    ident = f"py-{os.getpid()}-{time.monotonic_ns()}"
    async with open_(f"/report-close?id={ident}") as ws:
        await ws.send("hello")
        await expect(ws, "hello")
        await close_and_time(ws, code, reason)
        rcvd = ws.protocol.close_rcvd
        check(rcvd is not None, "no close frame from the server")
        check(rcvd.code == code,
              f"server answered close with {rcvd.code} {rcvd.reason!r}, expected the code {code} echoed")
    async with open_(f"/last-close?id={ident}") as ws:
        report = await asyncio.wait_for(ws.recv(), 10)
        want = f"{code} {reason}"
        check(report == want, f"server saw {report!r}, expected {want!r}")


async def close_from_server(open_):
    async with open_("/close") as ws:
        await ws.send("close please")
        try:
            got = await asyncio.wait_for(ws.recv(), 10)
            raise Fail(f"got {describe(got)}, expected close 4002 'server bye'")
        except ConnectionClosed as e:
            check(e.rcvd is not None, "connection closed without a close frame from the server")
            check((e.rcvd.code, e.rcvd.reason) == (4002, "server bye"),
                  f"server closed with {e.rcvd.code} {e.rcvd.reason!r}, expected 4002 'server bye'")
            check(e.sent is not None and e.sent.code == 4002,
                  f"our close answer was {e.sent}, expected 4002 echoed")


async def subprotocol(open_):
    async with open_("/subprotocol", subprotocols=["nope", "chat.v2"]) as ws:
        check(ws.subprotocol == "chat.v2", f"subprotocol {ws.subprotocol!r}, expected 'chat.v2'")
        await ws.send("v2")
        await expect(ws, "v2")
        await finish(ws)


async def subprotocol_none(open_):
    async with open_("/subprotocol") as ws:
        check(ws.subprotocol is None, f"subprotocol {ws.subprotocol!r} though none was offered")
        await ws.send("none")
        await expect(ws, "none")
        await finish(ws)


async def concurrent(open_):
    async def one(n):
        async with open_("/echo") as ws:
            for i in range(50):
                await ws.send(f"connection {n} message {i}")
                await expect(ws, f"connection {n} message {i}")
            await finish(ws)

    results = await asyncio.gather(*(one(n) for n in range(20)), return_exceptions=True)
    errors = [f"connection {n}: {r}" for n, r in enumerate(results) if r is not None]
    check(not errors, "; ".join(errors))


async def forbidden(open_):
    try:
        async with open_("/forbidden"):
            pass
    except InvalidStatus as e:
        check(e.response.status_code == 403, f"status {e.response.status_code}, expected 403")
        return
    raise Fail("the upgrade was accepted")


SCENARIOS = [
    ("deflate_negotiated", deflate_negotiated),
    ("text_utf8", text_utf8),
    ("text_empty", text_empty),
    ("text_1MiB_utf8", text_big),
    ("binary_0", binary(0)),
    ("binary_125", binary(125)),
    ("binary_126", binary(126)),
    ("binary_65535", binary(65535)),
    ("binary_65536", binary(65536)),
    ("binary_16MiB", binary(16 << 20)),
    ("burst_1000", burst),
    ("fragmented_text", fragmented_text),
    ("fragmented_binary", fragmented_binary),
    ("fragmented_with_ping", fragmented_with_ping),
    ("ping_pong", ping_pong),
    ("server_ping", server_ping),
    ("close_from_client", close_from_client),
    ("close_reason_utf8_123B", close_reason_utf8),
    ("close_from_server", close_from_server),
    ("subprotocol", subprotocol),
    ("subprotocol_none", subprotocol_none),
    ("forbidden_403", forbidden),
    ("concurrent_20", concurrent),
]


async def main():
    base = (sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9010").rstrip("/")
    only = sys.argv[2].split(",") if len(sys.argv) > 2 else None
    open_ = opener(base)
    failed = 0
    for name, run in SCENARIOS:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(run(open_), TIMEOUT)
            outcome = "PASS"
        except Fail as e:
            outcome = f"FAIL {e}"
        except asyncio.TimeoutError:
            outcome = f"FAIL timed out (a wait in the scenario, or its limit of {TIMEOUT} s)"
        except Exception as e:  # any library error is a failed scenario
            outcome = f"FAIL {type(e).__name__}: {e}"
        ms = int((time.monotonic() - t0) * 1000)
        if outcome != "PASS":
            failed += 1
        print(f"RESULT {name} {outcome} ({ms} ms)", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    asyncio.run(main())
