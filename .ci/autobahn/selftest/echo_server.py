"""Echo server built on the third-party `websockets` library.

ONLY for testing the Autobahn tooling (run-fuzzingclient.sh, check.py) before
hybi has its own server. Its results say nothing about hybi.

    python echo_server.py [HOST:PORT] [EXIT_AFTER]     (default 127.0.0.1:9002)

With EXIT_AFTER, the server exits after that many connections have ended
(to test what the tooling does when a server dies mid-run).
"""

import asyncio
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws, done):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass
    finally:
        done()


async def main(addr, exit_after):
    host, _, port = addr.rpartition(":")
    stop = asyncio.get_running_loop().create_future()
    ended = 0

    def done():
        nonlocal ended
        ended += 1
        if exit_after and ended >= exit_after and not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # max_size=None: the 9.* cases send messages up to 16 MiB.
    # compression=None: no permessage-deflate (hybi has none; cases 12/13 are off).
    async with serve(lambda ws: echo(ws, done), host, int(port), max_size=None, max_queue=None,
                     compression=None, ping_interval=None):
        print(f"echo server on ws://{host}:{port}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9002",
                     int(sys.argv[2]) if len(sys.argv) > 2 else 0))
