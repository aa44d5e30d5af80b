"""Two server processes sharing one real Redis behave as one phone system (``examples/two_instances.py``).

The test plays the load balancer: it sends each carrier webhook and media socket to the instance it
chooses, usually not the one that placed the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from getpatter.fleet.dashboard_mirror import STREAM_LEN
from tests.fakes.openai_realtime import FakeOpenAIRealtime
from tests.fakes.server import running
from tests.fakes.twilio import FakeCall, FakeTwilio
from tests.fleet.instances import HOST, NUMBER, PREFIX, Instance, fleet
from tests.redis_server import RedisProcess

CALLEE = "+15550003333"
VOICEMAIL = "Hi, this is Sam from Acme Dental. Please call us back at your convenience."


async def _placed(twilio: FakeTwilio, known: set[str]) -> FakeCall:
    async with asyncio.timeout(30):
        while True:
            for call in twilio.calls.values():
                if call.direction == "outbound-api" and call.sid not in known:
                    known.add(call.sid)
                    return call
            await asyncio.sleep(0.02)


async def _status(
    twilio: FakeTwilio, to: Instance, call: FakeCall, status: str, seq: int, **extra: str
) -> None:
    response = await twilio.send_status_callback(
        call.sid, to.url, HOST, status, sequence_number=seq, extra=extra
    )
    assert response.status_code == 204, response.text


async def _amd(twilio: FakeTwilio, to: Instance, call: FakeCall, answered_by: str) -> None:
    form = {"AccountSid": twilio.account_sid, "CallSid": call.sid, "AnsweredBy": answered_by}
    response = await twilio.post_webhook(to.url, HOST, "/webhooks/twilio/amd", form)
    assert response.status_code == 204, response.text


async def _one_turn(call: FakeCall) -> None:
    await call.wait_for_agent_audio(timeout=15)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=15)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)


def _fakes(calls: int) -> tuple[FakeTwilio, FakeOpenAIRealtime]:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    realtime = FakeOpenAIRealtime(
        utterances=["When are you open?"] * calls, fallback_text="Nine to five.", ms_per_char=5
    )
    return twilio, realtime


@contextlib.asynccontextmanager
async def two_instances(
    tmp_path: Path, redis: RedisProcess, calls: int
) -> AsyncIterator[tuple[FakeTwilio, Instance, Instance]]:
    """The fakes on loopback and instances A and B of the example, sharing ``redis``."""
    twilio, realtime = _fakes(calls)
    async with (
        running(twilio.app) as rest,
        running(realtime.app) as rt,
        fleet(tmp_path, redis.url, rest.http_url, twilio, rt.http_url + "/v1", realtime.api_key) as (a, b),
    ):
        yield twilio, a, b
    await twilio.aclose()


async def _keys(url: str) -> dict[str, int]:
    """Every key in Redis with its TTL in seconds (-1: none)."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return {key: await client.ttl(key) async for key in client.scan_iter(match="*")}
    finally:
        await client.aclose()


async def _sizes(url: str) -> tuple[int, int]:
    """Entries in the shared history list and the dashboard event stream."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return await client.llen(f"{PREFIX}:dash:history"), await client.xlen(f"{PREFIX}:dash:events")
    finally:
        await client.aclose()


async def test_a_call_placed_on_a_is_followed_through_callbacks_and_media_on_b(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    known: set[str] = set()
    async with two_instances(tmp_path, redis_server, 2) as (twilio, a, b):
        # A human answers: every callback and the media go to B.
        a.call(CALLEE)
        placed = await _placed(twilio, known)
        await _status(twilio, b, placed, "ringing", 1)
        call = await twilio.answer_call(placed.sid, b.url, HOST)
        await _status(twilio, b, placed, "in-progress", 2)
        await _one_turn(call)
        await call.hangup()
        await b.wait_for(rf"Call {placed.sid} ran on this instance")
        await _status(twilio, b, placed, "completed", 3, CallDuration="7")
        result = await a.wait_for(rf"Call {placed.sid} to \{CALLEE}: (\w+), (\d+) transcript lines")
        assert result.group(1) == "answered"
        assert int(result.group(2)) >= 2  # the transcript came from B's media session

        # A machine answers: the AMD verdict reaches B; A (which knows the message) leaves it, once.
        a.call(CALLEE)
        machine = await _placed(twilio, known)
        vm_call = await twilio.answer_call(machine.sid, b.url, HOST)
        await _status(twilio, b, machine, "in-progress", 2)
        await vm_call.wait_for_agent_audio(timeout=15)
        await _amd(twilio, b, machine, "machine_end_beep")
        await vm_call.wait_closed(timeout=15)  # the voicemail TwiML ended the media stream
        await _amd(twilio, b, machine, "machine_end_beep")  # a duplicate delivery changes nothing
        await _status(twilio, b, machine, "completed", 3, CallDuration="9")
        vm = await a.wait_for(rf"Call {machine.sid} to \{CALLEE}: (\w+)")
        assert vm.group(1) == "voicemail"
        keys = await _keys(redis_server.url)
        history, events = await _sizes(redis_server.url)

    updates = twilio.requests_to(f"/Calls/{machine.sid}.json", "POST")
    assert len(updates) == 1 and VOICEMAIL in updates[0].form["Twiml"]
    assert a.count(rf"Call {machine.sid} answered by a machine") == 1  # on_machine_detection: on A
    assert b.count(r"answered by a machine") == 0
    # on_call_end ran once per call, where the media ran.
    for sid in (placed.sid, machine.sid):
        assert b.count(rf"Call {sid} ran on this instance") == 1, b.output
        assert a.count(rf"Call {sid} ran on this instance") == 0, a.output
    # The call logs are on B, which ran the calls.
    assert any(placed.sid in str(p) for p in b.logs.rglob("metadata.json"))
    # Keys: all under the prefix; every per-call key expires; the shared lists are bounded.
    assert keys and all(k.startswith(PREFIX + ":") for k in keys), keys
    for sid in (placed.sid, machine.sid):
        assert 0 < keys[f"{PREFIX}:call:{sid}:owner"] <= 6 * 3600
    unbounded = {k for k, ttl in keys.items() if ttl < 0}
    assert unbounded <= {f"{PREFIX}:dash:events", f"{PREFIX}:dash:history"}, unbounded
    assert history == 2 and 0 < events <= STREAM_LEN  # both calls, once each; the stream is capped


async def _sse(client: httpx.AsyncClient, into: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async with client.stream("GET", "/api/dashboard/events") as response:
        assert response.status_code == 200
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                into.append({"type": kind, "data": json.loads(line[6:])})


async def _until(check: Any, timeout: float = 30.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.1)


async def test_a_call_on_a_is_live_in_b_dashboard_and_its_history(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    async with two_instances(tmp_path, redis_server, 1) as (twilio, a, b):
        events: list[dict[str, Any]] = []
        ready = asyncio.Event()
        async with b.client() as dash:
            follow = asyncio.create_task(_sse(dash, events, ready))
            await asyncio.wait_for(ready.wait(), 15)
            call = await twilio.start_inbound_call(a.url, HOST)

            async def live_on_b() -> list[Any]:
                body = (await dash.get("/api/dashboard/active")).json()
                return [c for c in body if c["call_id"] == call.sid]

            [live] = await _until(live_on_b)
            assert live["direction"] == "inbound" and live["caller"] == "+15550001111"
            await _one_turn(call)
            await call.hangup()

            async def finished_on_b() -> list[Any]:
                body = (await dash.get("/api/dashboard/calls")).json()
                return [c for c in body if c["call_id"] == call.sid]

            [done] = await _until(finished_on_b)
            await _until(lambda: _has(events, "call_end", call.sid))
            follow.cancel()
            assert not (await dash.get("/api/dashboard/active")).json()
        mine = [e["type"] for e in events if e["data"].get("call_id") == call.sid]
        assert mine[0] == "call_start" and mine[-1] == "call_end", mine
        assert "transcript_line" in mine
        assert [line["role"] for line in done["transcript"]].count("user") >= 1
        async with a.client() as dash_a:  # A shows it too, and B's history is A's
            assert (await dash_a.get(f"/api/dashboard/calls/{call.sid}")).status_code == 200
    # The call log is where the call ran (A), not on B.
    assert any(call.sid in str(p) for p in a.logs.rglob("metadata.json"))
    assert not any(call.sid in str(p) for p in b.logs.rglob("*"))


async def _has(events: list[dict[str, Any]], kind: str, call_id: str) -> bool:
    return any(e["type"] == kind and e["data"].get("call_id") == call_id for e in events)


async def test_redis_lost_and_back_mid_call_loses_nothing(redis_server: RedisProcess, tmp_path: Path) -> None:
    async with two_instances(tmp_path, redis_server, 2) as (twilio, a, b):
        call = await twilio.start_inbound_call(a.url, HOST)
        await call.wait_for_agent_audio(timeout=15)
        await call.wait_agent_quiet(quiet_ms=300, timeout=15)
        await asyncio.to_thread(redis_server.stop)
        # The call goes on without Redis: a whole turn, then the caller hangs up.
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=15)
        await call.wait_agent_quiet(quiet_ms=300, timeout=15)
        await call.hangup()
        await a.wait_for(r"lost Redis at redis://127\.0\.0\.1")
        await asyncio.to_thread(redis_server.start)
        await a.wait_for(r"Redis at redis://127\.0\.0\.1:\d+/0 is back", 60)

        async with b.client() as dash:

            async def finished_on_b() -> list[Any]:
                body = (await dash.get("/api/dashboard/calls")).json()
                return [c for c in body if c["call_id"] == call.sid]

            [done] = await _until(finished_on_b, 60)
        keys = await _keys(redis_server.url)
    assert a.count(r"lost Redis at") == 1, a.output  # one warning, however many operations failed
    assert call.protocol_errors == []
    # What the call wrote while Redis was away reached it once it was back: the whole transcript.
    assert [line["role"] for line in done["transcript"]].count("user") >= 1
    history = [k for k in keys if k == f"{PREFIX}:dash:history"]
    assert history and all(k.startswith(PREFIX + ":") for k in keys)
    assert any(call.sid in str(p) for p in a.logs.rglob("metadata.json"))
