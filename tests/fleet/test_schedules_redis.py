"""Scheduled jobs fire once across instances that share a real redis-server, and survive its loss."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from getpatter.errors import PatterConnectionError
from getpatter.fleet.redis_link import RedisLink
from getpatter.fleet.schedules import RedisFireLeases
from getpatter.scheduling import ManualClock, Scheduler
from tests.redis_server import RedisProcess

START = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


async def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_cron_job_scheduled_on_two_instances_fires_once_per_minute(links: list[RedisLink]) -> None:
    clock = ManualClock(START)
    ran: list[tuple[str, datetime]] = []
    handles = []
    for link in links:
        scheduler = Scheduler(clock, RedisFireLeases(link, lease_s=5))

        def job(who: str = link.instance_id) -> None:
            ran.append((who, clock.now()))

        handles.append(scheduler.schedule_cron("*/10 * * * *", job, name="campaign"))
    for step in range(1, 4):
        await clock.advance(600)
        await eventually(lambda step=step: len(ran) >= step and all(h.next_run_time for h in handles))
        await asyncio.sleep(0.1)  # a duplicate fire would land now
    assert [when for _, when in ran] == [START + timedelta(minutes=10 * k) for k in (1, 2, 3)]
    assert sum(h.runs for h in handles) == 3
    marks = await links[0].client.keys("t:sched:campaign:*")
    assert len(marks) == 3 and {await links[0].client.get(k) for k in marks} == {"done"}
    for h in handles:
        h.cancel()


async def test_a_fire_leased_by_a_dead_instance_is_taken_over_after_the_lease(links: list[RedisLink]) -> None:
    clock = ManualClock(START)
    fire = START + timedelta(minutes=1)
    # An instance that took the lease and died: its key expires, it never writes "done".
    await links[0].client.set(f"t:sched:job:{fire.timestamp():.3f}", "dead-instance", px=400)
    ran: list[datetime] = []
    scheduler = Scheduler(clock, RedisFireLeases(links[1], lease_s=5, poll_s=0.05))
    handle = scheduler.schedule_once(fire, lambda: ran.append(clock.now()), name="job")
    await clock.advance(60)
    await eventually(lambda: len(ran) == 1 and handle.runs == 1)  # runs counts once the callback returned
    assert ran == [fire] and handle.runs == 1
    key = f"t:sched:job:{fire.timestamp():.3f}"
    async with asyncio.timeout(30):  # the done mark is written just after the callback returned
        while await links[0].client.get(key) != "done":
            await asyncio.sleep(0.02)


async def test_a_long_job_keeps_its_lease_so_no_one_runs_it_twice(links: list[RedisLink]) -> None:
    clock = ManualClock(START)
    release = asyncio.Event()
    started: list[str] = []

    def make(who: str) -> Callable[[], object]:
        async def job() -> None:
            started.append(who)
            await release.wait()

        return job

    handles = [
        Scheduler(clock, RedisFireLeases(link, lease_s=2.0, poll_s=0.05)).schedule_once(
            START + timedelta(minutes=1), make(link.instance_id), name="long"
        )
        for link in links
    ]
    await clock.advance(60)
    await eventually(lambda: len(started) == 1)
    # Over two lease lengths: renewed (every third of a lease), so the other instance keeps waiting.
    await asyncio.sleep(4.5)
    assert len(started) == 1
    release.set()
    await eventually(lambda: not any(h.pending for h in handles))
    assert len(started) == 1 and sum(h.runs for h in handles) == 1


async def test_without_redis_an_instance_runs_its_own_fires_and_warns_once(
    redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    link = RedisLink(redis_server.url, prefix="t")
    await link.start()
    redis_server.stop()
    clock = ManualClock(START)
    ran: list[datetime] = []
    caplog.set_level(logging.WARNING, logger="getpatter.fleet")
    handle = Scheduler(clock, RedisFireLeases(link, lease_s=1)).schedule_interval(
        60, lambda: ran.append(clock.now()), name="beat"
    )
    for minute in range(1, 4):
        await clock.advance(60)
        await eventually(lambda minute=minute: len(ran) == minute)
    assert ran == [START + timedelta(minutes=k) for k in (1, 2, 3)]
    assert sum("lost Redis" in r.getMessage() for r in caplog.records) == 1
    handle.cancel()
    await link.close()


async def test_redis_down_at_start_is_a_clear_error_naming_the_url_without_its_password(
    redis_server: RedisProcess,
) -> None:
    redis_server.stop()
    link = RedisLink(f"redis://:s3cret-pass@127.0.0.1:{redis_server.port}/0", connect_timeout_s=1)
    with pytest.raises(PatterConnectionError) as info:
        await link.start()
    message = str(info.value)
    assert f"redis://:***@127.0.0.1:{redis_server.port}/0" in message and "s3cret" not in message
    assert "PATTER_REDIS_URL" in message


async def test_writes_made_while_redis_is_away_are_replayed_in_order_when_it_is_back(
    redis_server: RedisProcess,
) -> None:
    link = RedisLink(redis_server.url, prefix="t", max_backoff_s=0.2)
    await link.start()
    redis_server.stop()
    for i in range(5):
        await link.write(lambda r, i=i: r.rpush("t:log", f"line-{i}"))
    assert not link.healthy and link.buffered_writes == 5
    redis_server.start()
    await eventually(lambda: link.healthy)
    assert await link.client.lrange("t:log", 0, -1) == [f"line-{i}" for i in range(5)]
    assert link.buffered_writes == 0 and link.reconnects == 1
    await link.close()


async def test_a_password_protected_redis_is_reached_with_the_password_in_the_url(tmp_path: Path) -> None:
    server = RedisProcess(tmp_path, password="pw-123")
    server.start()
    try:
        link = RedisLink(server.url, prefix="t")
        await link.start()
        assert "pw-123" not in repr(link) and link.url.endswith(f"127.0.0.1:{server.port}/0")
        assert await link.call(lambda r: r.ping(), fallback=False) is True
        await link.close()
    finally:
        server.stop()
