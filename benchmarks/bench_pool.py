"""Bookkeeping cost per request of the shared HTTP pool (``getpatter._pool.pooled_client``) under load.

N workers (the concurrent calls) each make R streamed requests in turn through one ``pooled_client`` (one
provider object serving every call) against a loopback HTTP/1.1 server, holding each response open a few
milliseconds as a streamed answer does; the first round is started all at once, so the pool reaches N
connections. It reports what httpcore's ``AsyncConnectionPool._assign_requests_to_connections`` (the pool's
scan of its connections, run when a request starts and when its response closes) cost in total and per
request (timed around each call), and how many connections the server saw (N when every later request
rode a kept-alive connection). ``--profile`` runs under cProfile instead and also counts the scan's
``is_idle`` checks (cProfile's own overhead then dominates the times).

    python benchmarks/bench_pool.py                      # 150 workers x 4 requests
    python benchmarks/bench_pool.py --workers 50 --requests 10 --profile
    python benchmarks/bench_pool.py --pause-ms 40 --gap-ms 2    # mostly busy connections, few idle
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

import httpcore

from getpatter._pool import pooled_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fakes
from tests.fakes.stale_http import RawRequest, RawResponse, StaleHttpServer

BODY = b"x" * 4096


def _answer(_request: RawRequest) -> RawResponse:
    return RawResponse(content_type="application/octet-stream", body=BODY)


async def _run(
    workers: int, requests: int, seed: int, pause_s: float = 0.004, gap_s: float = 0.01
) -> tuple[int, int]:
    rng = random.Random(seed)
    server = StaleHttpServer(_answer)
    async with server.serving() as base_url:
        async with pooled_client(base_url=base_url, timeout=60) as client:
            all_open = asyncio.Barrier(workers)

            async def worker() -> None:
                for turn in range(requests):
                    async with client.stream("POST", "/speak", content=b"{}") as response:
                        if turn == 0:
                            await all_open.wait()  # every call streaming at once: the pool grows to N
                        async for _ in response.aiter_bytes(1024):
                            await asyncio.sleep(rng.uniform(0, pause_s))
                    await asyncio.sleep(rng.uniform(0, gap_s))

            await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(workers))), 300)
        await asyncio.sleep(0.2)  # the server reads the client's closes before it stops
    return server.requests_answered, server.connections


class _Timed:
    """Times every ``_assign_requests_to_connections`` call (a wrapper, far lighter than cProfile)."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0

    def install(self) -> None:
        original = httpcore.AsyncConnectionPool._assign_requests_to_connections

        def timed(pool: httpcore.AsyncConnectionPool) -> list[Any]:
            started = time.perf_counter()
            try:
                return original(pool)  # type: ignore[no-any-return]
            finally:
                self.calls += 1
                self.seconds += time.perf_counter() - started

        httpcore.AsyncConnectionPool._assign_requests_to_connections = timed  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=150, help="concurrent streams (calls)")
    parser.add_argument("--requests", type=int, default=4, help="requests per worker")
    parser.add_argument("--pause-ms", type=float, default=4, help="most between a response's 1 KiB chunks")
    parser.add_argument("--gap-ms", type=float, default=10, help="most between a worker's requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile, with is_idle counts")
    args = parser.parse_args()

    timed = _Timed()
    profile = cProfile.Profile()
    if args.profile:
        profile.enable()
    else:
        timed.install()
    answered, connections = asyncio.run(
        _run(args.workers, args.requests, args.seed, args.pause_ms / 1000, args.gap_ms / 1000)
    )
    profile.disable()

    idle_calls = 0
    if args.profile:
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        for (filename, _line, name), (_cc, ncalls, _tt, cumtime, _callers) in stats.items():
            if "httpcore" not in filename:
                continue
            if name == "_assign_requests_to_connections":
                timed.calls += ncalls
                timed.seconds += cumtime
            elif name == "is_idle" and filename.endswith("connection.py") and "_async" in filename:
                idle_calls += ncalls
    per_request_us = timed.seconds / max(answered, 1) * 1e6
    print(f"requests answered            {answered}  (expected {args.workers * args.requests})")
    print(f"connections opened           {connections}")
    print(f"_assign_requests_to_conns    {timed.calls} calls, {timed.seconds * 1000:.1f} ms")
    note = "  (under cProfile)" if args.profile else ""
    print(f"  per request                {per_request_us:.1f} us{note}")
    if args.profile:
        per_request = idle_calls / max(answered, 1)
        print(f"AsyncHTTPConnection.is_idle  {idle_calls} calls ({per_request:.0f} per request)")


if __name__ == "__main__":
    main()
