"""The .ci/peers server contract, implemented with Python `websockets` (asyncio API).

Usage: py_server.py [HOST:PORT]   (default 127.0.0.1:9011)

/echo                echo every text and binary message as is
/subprotocol         accept with "chat.v2" if offered (else no subprotocol), echo
/forbidden           reject the upgrade with HTTP 403
/ping                on the first message, ping with "server ping κόσμε"; when the
                     matching pong arrives, send "pong: server ping κόσμε"
/close               on the first message, close with 4002 "server bye"
/report-close?id=ID  echo; remember the close code and reason the client sent under ID
                     (websockets answers a close by echoing the client's frame)
/last-close?id=ID    send "<code> <reason>" seen on /report-close?id=ID as one text
                     message (waits up to 5 s for it), then close with 1000

PEERS_DEFLATE=1: permessage-deflate on (`compression="deflate"`, websockets' defaults:
windows of 12 bits, every message compressed); 0 or unset: off (`compression=None`),
offers are declined.

PEERS_TLS=1: serve wss:// only, with the certificate chain in the PEM file
PEERS_TLS_CERT and the key in PEERS_TLS_KEY; 0 or unset: plain ws://.
"""

import asyncio
import http
import os
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MAX_SIZE = 64 << 20  # as hybi's default message limit
SERVER_PING = "server ping κόσμε"
DEFLATE = os.environ.get("PEERS_DEFLATE", "")
if DEFLATE not in ("", "0", "1"):
    sys.exit(f"py_server: PEERS_DEFLATE must be 1 or 0, not {DEFLATE!r}")
DEFLATE = DEFLATE == "1"
TLS = os.environ.get("PEERS_TLS", "")
if TLS not in ("", "0", "1"):
    sys.exit(f"py_server: PEERS_TLS must be 1 or 0, not {TLS!r}")
TLS = TLS == "1"


def tls_context():
    if not TLS:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["PEERS_TLS_CERT"], os.environ["PEERS_TLS_KEY"])
    return ctx

seen: dict[str, tuple[int, str]] = {}
seen_changed: asyncio.Condition | None = None


def split(path: str) -> tuple[str, str]:
    parts = urlsplit(path)
    return parts.path, parse_qs(parts.query).get("id", [""])[0]


def process_request(connection, request):
    path, _ = split(request.path)
    if path == "/forbidden":
        return connection.respond(http.HTTPStatus.FORBIDDEN, "forbidden\n")
    if path not in ("/echo", "/subprotocol", "/ping", "/close", "/report-close", "/last-close"):
        return connection.respond(http.HTTPStatus.NOT_FOUND, "no WebSocket here\n")
    return None


def select_subprotocol(connection, subprotocols):
    path, _ = split(connection.request.path)
    if path == "/subprotocol" and "chat.v2" in subprotocols:
        return "chat.v2"
    return None


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def handler(ws):
    path, ident = split(ws.request.path)
    if path in ("/echo", "/subprotocol"):
        await echo(ws)
    elif path == "/ping":
        try:
            await ws.recv()
            # websockets completes the waiter only for a pong with this payload.
            waiter = await ws.ping(SERVER_PING.encode())
            await asyncio.wait_for(waiter, 10)
            await ws.send(f"pong: {SERVER_PING}")
            await echo(ws)
        except (ConnectionClosed, asyncio.TimeoutError):
            return
    elif path == "/close":
        try:
            await ws.recv()
        except ConnectionClosed:
            return
        await ws.close(4002, "server bye")
    elif path == "/report-close":
        await echo(ws)
        rcvd = ws.protocol.close_rcvd
        async with seen_changed:
            seen[ident] = (rcvd.code, rcvd.reason) if rcvd else (1006, "")
            seen_changed.notify_all()
    elif path == "/last-close":
        async with seen_changed:
            try:
                await asyncio.wait_for(seen_changed.wait_for(lambda: ident in seen), 5)
                code, reason = seen[ident]
                report = f"{code} {reason}"
            except asyncio.TimeoutError:
                report = "none"
        await ws.send(report)
        await ws.close(1000)


async def main():
    global seen_changed
    seen_changed = asyncio.Condition()
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9011"
    host, port = addr.rsplit(":", 1)
    async with serve(
        handler,
        host,
        int(port),
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        max_size=MAX_SIZE,
        max_queue=64,
        ping_interval=None,
        compression="deflate" if DEFLATE else None,
        ssl=tls_context(),
    ) as server:
        scheme = "wss" if TLS else "ws"
        print(f"py_server (websockets) on {scheme}://{addr}, permessage-deflate "
              f"{'on' if DEFLATE else 'off'}", file=sys.stderr, flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
