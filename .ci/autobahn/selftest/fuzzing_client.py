"""Client for the Autobahn fuzzingserver, built on the third-party `websockets`
library.

ONLY for testing the Autobahn tooling (run-fuzzingserver.sh, check.py) before
hybi has its own client. Its results say nothing about hybi.

It speaks the fuzzingserver's protocol: /getCaseCount, then
/runCase?case=N&agent=AGENT for N = 1..count echoing every message until the
suite closes, then /updateReports?agent=AGENT.

    python fuzzing_client.py [ws://127.0.0.1:9001] [AGENT]   (default agent: hybi)
"""

import asyncio
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake


async def run_case(base, case, agent):
    try:
        async with connect(f"{base}/runCase?case={case}&agent={agent}",
                           max_size=None, max_queue=None, compression=None,
                           ping_interval=None, open_timeout=10) as ws:
            async for message in ws:
                await ws.send(message)
    except (ConnectionClosed, InvalidHandshake, OSError, asyncio.TimeoutError) as e:
        # Failing the connection is the expected outcome of many cases.
        print(f"  case {case}: {type(e).__name__}: {e}", flush=True)


async def main(base, agent):
    async with connect(f"{base}/getCaseCount") as ws:
        count = int(await ws.recv())
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        t0 = time.monotonic()
        await run_case(base, case, agent)
        print(f"case {case}/{count} done in {time.monotonic() - t0:.2f}s", flush=True)
    async with connect(f"{base}/updateReports?agent={agent}") as ws:
        try:
            await ws.recv()
        except ConnectionClosed:
            pass
    print("reports updated", flush=True)


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:9001"
    agent = sys.argv[2] if len(sys.argv) > 2 else "hybi"
    asyncio.run(main(base.rstrip("/"), agent))
