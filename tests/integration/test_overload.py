"""A server driven past its limit: admitted calls are answered whole, the rest refused cleanly.

Real app, real sockets, the fake carriers: at twice the capacity every admitted call gets its greeting
and its reply in full, and every other call is turned away on the carrier's terms (Twilio
``<Reject reason="busy"/>``, Telnyx ``reject`` with ``USER_BUSY``), never answered, never left ringing.
The event loop's lag is driven tick by tick (no wall-clock assertions).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from getpatter import AtCapacityError
from getpatter.call.progress import CallRefused
from getpatter.server.loop_lag import LoopLagMonitor
from tests.fakes._patience import patient
from tests.fakes.twilio import FakeCall
from tests.integration.harness import Harness, call_harness
from tests.integration.telnyx_harness import telnyx_harness
from tests.unit.test_admission import TickDriver

GREETING = "Hello, thanks for calling."
REPLY = "Sure, one moment."
MS_PER_CHAR = 15.0
MULAW_BYTES_PER_MS = 8
CAPACITY = 3


@pytest.fixture(autouse=True)
def _no_lag_shedding_unless_driven(monkeypatch: pytest.MonkeyPatch) -> None:
    # The capacity tests count calls only; lag shedding gets its own, driven, test below.
    monkeypatch.setenv("PATTER_MAX_LOOP_LAG_MS", "0")
    monkeypatch.delenv("PATTER_MAX_CALLS", raising=False)


async def _converse(call: FakeCall) -> None:
    """Greeting heard, the caller speaks, the reply heard whole, hang up."""
    await call.wait_for_agent_audio(timeout=10)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    await call.say_tone(400)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    await call.hangup()


async def _health(h: Harness) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(h.server.http_url + "/health")


def _assert_answered_whole(call: FakeCall, ended: dict[str, Any]) -> None:
    assert ended["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "I need help"},
        {"role": "assistant", "text": REPLY},
    ]
    assert call.protocol_errors == [] and call.ended_by == "caller-hangup"
    assert not any(mark.cleared for mark in call.marks_echoed)
    # Everything the agent said reached the caller and was played: no audio lost to the overload.
    spoken_ms = (len(GREETING) + len(REPLY)) * MS_PER_CHAR
    assert len(call.played_audio_mulaw()) >= 0.95 * spoken_ms * MULAW_BYTES_PER_MS


async def test_twice_the_capacity_admits_the_cap_whole_and_refuses_the_rest_busy() -> None:
    refused: list[CallRefused] = []
    async with call_harness(
        utterances=["I need help"] * CAPACITY,
        replies=[REPLY] * CAPACITY,
        ms_per_char=MS_PER_CHAR,
        serve_kwargs={"max_concurrent_calls": CAPACITY},
    ) as h:
        h.phone.events.on(CallRefused, refused.append)
        calls = await asyncio.wait_for(asyncio.gather(*(h.dial() for _ in range(2 * CAPACITY))), patient(20))
        admitted = [c for c in calls if c.rejected is None]
        turned_away = [c for c in calls if c.rejected is not None]
        assert len(admitted) == CAPACITY and len(turned_away) == CAPACITY

        # Full: the load balancer is told to go elsewhere, with the load in the body.
        busy = await _health(h)
        assert busy.status_code == 503
        load = busy.json()
        assert load["status"] == "busy" and load["accepting"] is False and load["refusing"] == "capacity"
        assert load["capacity"] == CAPACITY
        assert load["live_calls"] + load["reserved_calls"] == CAPACITY
        assert load["refused_calls"]["capacity"] == CAPACITY

        await asyncio.wait_for(asyncio.gather(*(_converse(c) for c in admitted)), patient(40))
        await h.wait_ended(count=CAPACITY, timeout=15)

        # Calls over: capacity is back, and a new call is answered again.
        again = await h.dial()
        assert again.rejected is None
        await again.wait_for_agent_audio(timeout=10)
        await again.hangup()
        aggregates = h.phone.metrics_store.get_aggregates()

    for call in turned_away:
        # Refused the way Twilio means it: <Reject> as the only verb, never answered, no media socket.
        assert call.rejected == "busy" and call.status == "busy"
        assert call.twiml is not None and "<Reject" in call.twiml and "<Connect" not in call.twiml
        assert call.stream_sid is None and call.received == []
    by_sid = {end["call_id"]: end for end in h.ended}
    for call in admitted:
        _assert_answered_whole(call, by_sid[call.sid])
    assert sorted(ev.call_id for ev in refused) == sorted(c.sid for c in turned_away)
    assert {(ev.direction, ev.reason, ev.carrier) for ev in refused} == {("inbound", "capacity", "twilio")}
    assert aggregates["refused_calls"] == CAPACITY
    assert aggregates["refused_by_reason"] == {"capacity": CAPACITY}


async def test_health_says_ok_with_the_load_while_there_is_room() -> None:
    async with call_harness(serve_kwargs={"max_concurrent_calls": 2}) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=10)
        response = await _health(h)
        await call.hangup()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["mode"] == "local" and body["accepting"] is True
    assert body["live_calls"] == 1 and body["active_calls"] == 1 and body["capacity"] == 2
    assert body["max_loop_lag_ms"] is None  # shedding off in this module
    assert "refusing" not in body


async def test_an_outbound_call_past_capacity_is_not_dialled(monkeypatch: pytest.MonkeyPatch) -> None:
    async with call_harness(serve_kwargs={"max_concurrent_calls": 1}) as h:
        live = await h.dial()
        await live.wait_for_agent_audio(timeout=10)
        with pytest.raises(AtCapacityError) as refused:
            await h.phone.call("+15550003333")
        await live.hangup()
        await h.wait_ended()
        dials = h.twilio.requests_to("/Calls.json", "POST")
    assert refused.value.reason == "capacity" and refused.value.code == "CAPACITY"
    assert "was not dialled" in str(refused.value)
    assert dials == []


async def test_sustained_loop_lag_refuses_new_calls_busy_and_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTER_MAX_LOOP_LAG_MS", "200")
    driver = TickDriver()
    async with call_harness(utterances=["I need help"], replies=[REPLY], ms_per_char=MS_PER_CHAR) as h:
        state = h.phone._state
        assert state is not None
        admission = state.admission
        await admission.monitor.stop()  # the loop's own clock is replaced by one the test drives
        monitor = LoopLagMonitor(interval_s=0.1, window=2, clock=driver.clock, sleep=driver.sleep)
        admission.monitor = monitor
        admission.ensure_monitor()
        for lag in (0.5, 0.6):  # the loop is late at every tick
            await driver.tick(monitor, lag)
        shed = await h.dial()
        lagging = await _health(h)
        for lag in (0.0, 0.01):  # caught up
            await driver.tick(monitor, lag)
        call = await h.dial()
        await _converse(call)
        await h.wait_ended()
        recovered = await _health(h)
        await admission.close()

    assert shed.rejected == "busy" and shed.received == []
    assert lagging.status_code == 503
    assert lagging.json()["refusing"] == "loop_lag" and lagging.json()["loop_lag_ms"] == 500.0
    assert lagging.json()["refused_calls"]["loop_lag"] == 1
    assert recovered.status_code == 200 and recovered.json()["loop_lag_ms"] <= 10.0
    _assert_answered_whole(call, h.ended[0])


async def test_telnyx_past_capacity_rejects_with_user_busy_and_never_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTER_MAX_CALLS", "1")  # the environment's spelling of the cap
    async with telnyx_harness(utterances=["I need help"], replies=[REPLY], ms_per_char=MS_PER_CHAR) as h:
        admitted = await h.dial()
        refused = await h.dial()
        await admitted.wait_for_agent_audio(timeout=10)
        await admitted.wait_agent_quiet(quiet_ms=300, timeout=15)
        await admitted.say_tone(400)
        await admitted.wait_for_agent_audio(after=admitted.speech_onsets[-1], timeout=10)
        await admitted.wait_agent_quiet(quiet_ms=300, timeout=15)
        await admitted.hangup()
        await h.wait_ended()
        aggregates = h.phone.metrics_store.get_aggregates()

    actions = [action for action, _ in refused.commands]
    assert actions == ["reject"]  # never answered
    assert refused.commands[0][1] == {"cause": "USER_BUSY"}
    assert refused.state == "hangup" and refused.stream_id is None
    assert admitted.commands[0][0] == "answer"
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "I need help"},
        {"role": "assistant", "text": REPLY},
    ]
    assert aggregates["refused_calls"] == 1
