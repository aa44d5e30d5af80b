"""A busy pool is a row of small sub-pools: httpcore's per-request bookkeeping scans one pool's every
connection, so no sub-pool grows past a few, while the product still sees one pool: no cap on open
connections, the same warm connections reused from one busy moment to the next, one connection for a
quiet server."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from getpatter._pool import (
    SHARD_CAPACITY,
    VENDOR_KEEPALIVE_EXPIRY_S,
    StaleConnectionRetry,
    pooled_client,
)
from getpatter.errors import PatterConfigError
from tests.fakes.stale_http import RawRequest, RawResponse, StaleHttpServer

CONCURRENT = 120


def _answer(_request: RawRequest) -> RawResponse:
    return RawResponse(content_type="application/octet-stream", body=b"a" * 2048)


def _retry(client: httpx.AsyncClient) -> StaleConnectionRetry:
    transport = client._transport
    assert isinstance(transport, StaleConnectionRetry)
    return transport


def _connections(client: httpx.AsyncClient) -> list[list[object]]:
    """The connections each kept-alive sub-pool holds."""
    return [shard._pool.connections for shard in _retry(client)._shards]  # type: ignore[attr-defined]


async def _streams_at_once(client: httpx.AsyncClient, count: int) -> list[int]:
    """``count`` streamed requests all open at the same moment (none finishes before the last has its
    answer's head), then read to the end."""
    all_open = asyncio.Barrier(count)

    async def one() -> int:
        async with client.stream("POST", "/speak", content=b"{}") as response:
            await all_open.wait()
            return len(await response.aread())

    return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), 60)


async def test_a_busy_moment_spreads_over_small_sub_pools_and_the_next_one_reuses_every_connection() -> None:
    server = StaleHttpServer(_answer)
    async with server.serving() as base_url:
        client = pooled_client(base_url=base_url, timeout=60)
        try:
            first = await _streams_at_once(client, CONCURRENT)
            after_first = [len(held) for held in _connections(client)]
            second = await _streams_at_once(client, CONCURRENT)
            after_second = [len(held) for held in _connections(client)]
        finally:
            await client.aclose()
    assert first == second == [2048] * CONCURRENT
    # 120 streams at once: 15 sub-pools of 8 connections each, none larger.
    assert after_first == [SHARD_CAPACITY] * (CONCURRENT // SHARD_CAPACITY)
    # The second busy moment rode the first one's connections, sub-pool by sub-pool: no new connection.
    assert after_second == after_first
    assert server.connections == CONCURRENT and server.requests_answered == 2 * CONCURRENT


async def test_a_quiet_server_keeps_to_one_sub_pool_and_its_warm_connections() -> None:
    server = StaleHttpServer(_answer)
    async with server.serving() as base_url:
        client = pooled_client(base_url=base_url)
        try:
            for _ in range(5):  # one request at a time: one connection, reused
                assert len((await client.post("/speak", content=b"{}")).content) == 2048
            assert server.connections == 1
            await _streams_at_once(client, 3)  # a few at once: the same sub-pool grows, no second one
            sizes = [len(held) for held in _connections(client)]
        finally:
            await client.aclose()
    assert sizes == [3] and server.connections == 3 and server.requests_answered == 8


async def test_past_every_sub_pool_s_capacity_nothing_waits_and_the_warm_total_stays_bounded() -> None:
    """No cap on open connections: past ``max_shards * shard_capacity`` streams in flight, each still gets
    a connection at once (on the least busy sub-pool); afterwards each sub-pool keeps ``shard_capacity``
    warm, as the single pool kept its ``KEEPALIVE_CONNECTIONS``."""
    server = StaleHttpServer(_answer)
    transport = StaleConnectionRetry(
        keepalive_expiry_s=VENDOR_KEEPALIVE_EXPIRY_S, shard_capacity=2, max_shards=3
    )
    async with server.serving() as base_url:
        client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=60)
        try:
            assert await _streams_at_once(client, 10) == [2048] * 10  # a capped pool would never get there
            kept = [len(held) for held in _connections(client)]
            await _streams_at_once(client, 10)
        finally:
            await client.aclose()
    assert server.connections == 10 + (10 - sum(kept))
    assert kept == [2, 2, 2]
    assert transport._in_flight == [0, 0, 0]  # every closed response gave its place back


async def test_closing_the_client_closes_the_connections_of_every_sub_pool() -> None:
    server = StaleHttpServer(_answer)
    async with server.serving() as base_url:
        client = pooled_client(base_url=base_url)
        await _streams_at_once(client, 3 * SHARD_CAPACITY)
        held = [connection for shard in _connections(client) for connection in shard]
        await client.aclose()
    assert len(_retry(client)._shards) == 3 and len(held) == 3 * SHARD_CAPACITY
    assert all(connection.is_closed() for connection in held)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["shard_capacity", "max_shards"])
def test_a_sub_pool_size_below_one_is_refused_naming_the_parameter(name: str) -> None:
    with pytest.raises(PatterConfigError, match=name):
        StaleConnectionRetry(keepalive_expiry_s=1.0, **{name: 0})  # type: ignore[arg-type]
