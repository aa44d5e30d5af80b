"""Hundreds of short calls through one server leave no tasks, sockets or live call records behind."""

from __future__ import annotations

import asyncio
import gc

import httpx
import pytest

from tests.fakes.twilio import FakeCall
from tests.integration.harness import Harness, call_harness
from tests.reliability._support import fd_count, until

WARM_UP = 30
CALLS = 1000  # issue 12: no task or socket leaks after 1,000 short calls
AT_ONCE = 6
#: Slack for pooled keep-alive connections and the event loop's own bookkeeping, not per-call growth.
TASK_TOLERANCE = 8
FD_TOLERANCE = 12


async def _short_call(h: Harness) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=10)
    await call.hangup()
    await call.aclose()  # the fake's own reader and mark pump
    return call


async def _batch(h: Harness, count: int) -> None:
    done = 0
    while done < count:
        n = min(AT_ONCE, count - done)
        await asyncio.gather(*(_short_call(h) for _ in range(n)))
        done += n


async def _quiesce(h: Harness, expected_ended: int) -> None:
    await h.wait_ended(expected_ended, timeout=30)
    await until(lambda: not h.phone.metrics_store.get_active_calls(), timeout=10)
    async with httpx.AsyncClient(timeout=5.0) as client:
        health = (await client.get(h.server.http_url + "/health")).json()
    assert health["status"] == "ok" and health.get("active_calls", 0) == 0
    await until(lambda: all(c.close_code is not None for c in h.deepgram.connections), timeout=10)
    h.twilio.calls.clear()
    for _ in range(5):  # let closing transports and finished tasks be collected
        await asyncio.sleep(0.05)
    gc.collect()


async def test_1000_short_calls_leak_no_tasks_sockets_or_records(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every simulated caller is 127.0.0.1; on a loaded machine one batch's sockets can still be closing
    # server-side when the next batch dials, so the per-IP cap (tested in test_security) is lifted here.
    monkeypatch.setenv("PATTER_MAX_SOCKETS_PER_IP", "0")
    async with call_harness(first_message="Hi.", ms_per_char=2.0) as h:
        await _batch(h, WARM_UP)
        await _quiesce(h, WARM_UP)
        tasks_before = len(asyncio.all_tasks())
        fds_before = fd_count()

        await _batch(h, CALLS)
        await _quiesce(h, WARM_UP + CALLS)
        tasks_after = len(asyncio.all_tasks())
        fds_after = fd_count()

        assert len(h.ended) == WARM_UP + CALLS
        assert len({e["call_id"] for e in h.ended}) == WARM_UP + CALLS  # each call ended exactly once
        store = h.phone.metrics_store
        assert store.get_active_calls() == []
        assert store.call_count == min(WARM_UP + CALLS, store.max_calls)  # a bounded history
        assert store.get_aggregates()["active_calls"] == 0
        assert tasks_after <= tasks_before + TASK_TOLERANCE, (
            tasks_before,
            tasks_after,
            sorted({t.get_name() for t in asyncio.all_tasks()}),
        )
        assert fds_after <= fds_before + FD_TOLERANCE, (fds_before, fds_after)
