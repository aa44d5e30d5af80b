"""The attacker side of the upgrade-flood test, run in its own process so its CPU is not the server's:
``python -m tests.reliability._flood WS_URL ATTEMPTS AT_ONCE INTERVAL_S`` prints a JSON object
``{outcome: count}`` (``http 403``: refused before accept; ``close 1008``: closed after a bad start).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fakes.twilio import new_sid

ATTACKERS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")


def _start(sid: str, params: dict[str, str]) -> str:
    stream = new_sid("MZ")
    return json.dumps(
        {
            "event": "start",
            "streamSid": stream,
            "start": {
                "streamSid": stream,
                "callSid": sid,
                "customParameters": params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
    )


async def _attack(url: str, index: int) -> str:
    """One unauthenticated attempt; returns how it ended (``http 403``, ``close 1008``, ...)."""
    sid = new_sid("CA")
    kind = index % 4
    try:
        ws = await connect(
            f"{url}/ws/stream/{sid}",
            open_timeout=20,
            close_timeout=2,
            local_addr=(ATTACKERS[index % len(ATTACKERS)], 0),
        )
    except InvalidStatus as exc:
        return f"http {exc.response.status_code}"
    except (OSError, TimeoutError) as exc:
        return f"connect {type(exc).__name__}"
    try:
        await ws.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        if kind == 0:  # no token
            await ws.send(_start(sid, {"caller": "+15550009999"}))
        elif kind == 1:  # forged token
            await ws.send(_start(sid, {"stream_token": "v1.4102444800.bm9uY2U." + "A" * 43}))
        elif kind == 2:  # garbage instead of a start
            for _ in range(20):
                await ws.send("{not json")
        else:  # a stop before any start
            await ws.send('{"event":"stop","stop":{}}')
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(20):
                async for _ in ws:
                    pass
        return f"close {ws.close_code}"
    finally:
        with contextlib.suppress(Exception):
            await ws.close()


async def flood(url: str, attempts: int, at_once: int, interval_s: float = 0.0) -> collections.Counter[str]:
    outcomes: collections.Counter[str] = collections.Counter()
    queue = iter(range(attempts))

    async def worker() -> None:
        for index in queue:
            outcomes[await _attack(url, index)] += 1
            await asyncio.sleep(interval_s)  # a bounded rate, so the test measures, not just overloads

    await asyncio.gather(*(worker() for _ in range(at_once)))
    return outcomes


if __name__ == "__main__":
    result = asyncio.run(flood(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    print(json.dumps(dict(result)))
