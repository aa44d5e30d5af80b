"""The SDK feeds a real ``patter dashboard`` process (a subprocess on a free loopback port, with a token):
each call's start, its live transcript lines and its end, and outbound calls from the dial on; a
dashboard that is not up yet gets the events once it is (retries with backoff)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.integration.harness import NUMBER, Harness, call_harness
from tests.integration.test_dashboard_api import read_events
from tests.integration.test_outbound_twilio import _placed, _status

TOKEN = "notify-test-token"
ROOT = Path(__file__).resolve().parents[2]
CALLEE = "+15550003333"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def dashboard_process(port: int) -> AsyncIterator[httpx.AsyncClient]:
    """``patter dashboard --port PORT --token TOKEN`` until the block ends; yields a client for it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "getpatter.cli", "dashboard", "--port", str(port), "--token", TOKEN],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        for _ in range(600):  # up to ~60 s on a loaded machine
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).json().get("mode") == "dashboard":
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("patter dashboard did not come up")
        yield client
    finally:
        await client.aclose()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


async def _until(predicate: Any, timeout: float = 30.0) -> Any:
    async def poll() -> Any:
        while not (value := await predicate()):
            await asyncio.sleep(0.05)
        return value

    return await asyncio.wait_for(poll(), timeout)


async def _one_turn_call(h: Harness) -> str:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.say_tone(600)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.hangup()
    await h.wait_ended()
    return call.sid


async def _record(client: httpx.AsyncClient, call_id: str) -> dict[str, Any] | None:
    calls = (await client.get("/api/dashboard/calls")).json()
    found = [c for c in calls if c["call_id"] == call_id]
    return found[0] if found else None


async def test_a_call_is_posted_live_to_a_real_dashboard_process() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/?token={TOKEN}"  # what `patter dashboard` prints
    async with (
        dashboard_process(port) as board,
        call_harness(
            utterances=["What are your opening hours?"],
            replies=["Nine to five."],
            patter_kwargs={"dashboard_notify": url},
        ) as h,
    ):
        events: list[tuple[str, Any]] = []
        reader = asyncio.create_task(
            read_events(board, f"/api/dashboard/events?token={TOKEN}", events, "call_end")
        )
        await _until(lambda: asyncio.sleep(0, bool(events)))  # subscribed before the call
        sid = await _one_turn_call(h)
        await asyncio.wait_for(reader, 30)
        record = await _until(lambda: _record(board, sid))
    kinds = [k for k, _ in events if k != ":"]
    assert kinds[0] == "call_start" and kinds[-1] == "call_end"
    lines = [d for k, d in events if k == "transcript_line"]
    # Lines arrived live, one by one, before the end.
    assert [(d["role"], d["text"]) for d in lines] == [
        ("assistant", "Hello, thanks for calling."),
        ("user", "What are your opening hours?"),
        ("assistant", "Nine to five."),
    ]
    assert all(d["call_id"] == sid for d in lines)
    assert record["caller"] == "+15550001111" and record["status"] == "completed"
    local = h.phone.metrics_store.get_call(sid)
    assert local is not None and record["metrics"]["cost"] == local["metrics"]["cost"]
    assert record["metrics"]["cost"]["total"] > 0


async def test_a_dashboard_that_starts_late_still_gets_the_call_and_outbound_progress() -> None:
    port = free_port()  # nothing listens yet
    async with call_harness(
        patter_kwargs={"dashboard_notify": f"http://127.0.0.1:{port}/?token={TOKEN}"}
    ) as h:
        call_id = await h.phone.call(CALLEE)  # a dashboard that is down costs the call nothing
        placed = await _placed(h.twilio)
        await _status(h, placed, "initiated", 0)
        await _status(h, placed, "ringing", 1)
        await _status(h, placed, "no-answer", 2, CallDuration="0")
        async with dashboard_process(port) as board:  # comes up after the events were queued
            record = await _until(lambda: _record(board, call_id), timeout=60)
            assert record["status"] == "no-answer"
            assert (record["caller"], record["callee"], record["direction"]) == (NUMBER, CALLEE, "outbound")
            assert record["metrics"]["cost"]["total"] == 0.0
