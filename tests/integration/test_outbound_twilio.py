"""Outbound Twilio calls through the real server: ``phone.call()`` against the fake Twilio.

The fake records the ``Calls.json`` request (asserted field by field), picks up with the TwiML it was
given (the media stream opens on ``/ws/stream/outbound``), and the test plays Twilio's signed status and
AMD callbacks in the order Twilio sends them (twilio.md §6).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from getpatter import Patter
from getpatter.call.progress import CallStatusChanged, MachineDetected
from getpatter.call.results import CallResult, MachineDetectionResult
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import PatterConfigError
from getpatter.llm.openai import OpenAILLM
from tests.fakes.twilio import FakeCall, FakeTwilio, parse_connect_stream
from tests.integration.harness import NUMBER, PUBLIC_HOST, Harness, call_harness

CALLEE = "+15550003333"
GREETING = "Hi, this is Acme calling about your order."


async def _placed(fake: FakeTwilio, timeout: float = 5.0) -> FakeCall:
    """The outbound call the product created through ``Calls.json``."""

    async def until() -> FakeCall:
        while True:
            calls = [c for c in fake.calls.values() if c.direction == "outbound-api"]
            if calls:
                return calls[-1]
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(until(), timeout)


async def _status(h: Harness, call: FakeCall, status: str, seq: int, **extra: str) -> None:
    response = await h.twilio.send_status_callback(
        call.sid, h.server.http_url, PUBLIC_HOST, status, sequence_number=seq, extra=extra
    )
    assert response.status_code == 204


async def _amd(h: Harness, call: FakeCall, answered_by: str) -> None:
    form = {
        "AccountSid": h.twilio.account_sid,
        "CallSid": call.sid,
        "AnsweredBy": answered_by,
        "MachineDetectionDuration": "4180",
    }
    response = await h.twilio.post_webhook(h.server.http_url, PUBLIC_HOST, "/webhooks/twilio/amd", form)
    assert response.status_code == 204


def _create_form(h: Harness) -> dict[str, Any]:
    [create] = h.twilio.requests_to("/Calls.json", "POST")
    assert create.status == 201 and create.authorized
    assert create.content_type == "application/x-www-form-urlencoded"
    return dict(create.form)


def _statuses(h: Harness) -> list[CallStatusChanged]:
    seen: list[CallStatusChanged] = []
    assert h.phone._state is not None
    h.phone._state.events.on(CallStatusChanged, seen.append)
    return seen


async def test_answered_by_a_human_has_a_conversation_and_a_result() -> None:
    started: list[dict[str, Any]] = []
    async with call_harness(
        utterances=["Yes, that works for me."],
        replies=["Great, see you on Monday."],
        serve_kwargs={"on_call_start": started.append},
    ) as h:
        statuses = _statuses(h)
        task = asyncio.create_task(h.phone.call(CALLEE, first_message=GREETING, wait=True))
        placed = await _placed(h.twilio)
        form = _create_form(h)
        twiml = form.pop("Twiml")
        assert form == {
            "To": CALLEE,
            "From": NUMBER,
            "StatusCallback": f"https://{PUBLIC_HOST}/webhooks/twilio/status",
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
            "Timeout": "25",
        }  # no AMD fields: machine_detection defaults to False
        url, params, _ = parse_connect_stream(str(twiml))
        assert url == f"wss://{PUBLIC_HOST}/ws/stream/outbound"
        assert params.pop("stream_token").startswith("v1.")  # signed; verified when the socket starts
        assert params == {
            "caller": NUMBER,
            "callee": CALLEE,
            "direction": "outbound",
            "first_message": GREETING,
        }

        await _status(h, placed, "initiated", 0)
        await _status(h, placed, "ringing", 1)
        call = await h.twilio.answer_call(placed.sid, h.server.http_url, PUBLIC_HOST)
        await _status(h, placed, "in-progress", 2)
        await call.wait_for_agent_audio(timeout=5)  # the per-call greeting
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()
        assert not task.done()  # the carrier has not said the call is over yet
        await _status(h, placed, "completed", 3, CallDuration="14")
        result = await asyncio.wait_for(task, 5)

    assert call.protocol_errors == []
    assert result == CallResult(
        call_id=placed.sid,
        outcome="answered",
        status="completed",
        duration_seconds=14.0,
        transcript=(
            {"role": "assistant", "text": GREETING},
            {"role": "user", "text": "Yes, that works for me."},
            {"role": "assistant", "text": "Great, see you on Monday."},
        ),
        cost=result.cost,
        metrics=result.metrics,
    )
    assert h.tts.texts[0] == GREETING  # the call's first message replaced the agent's greeting
    assert started[0]["direction"] == "outbound"
    assert (started[0]["caller"], started[0]["callee"]) == (NUMBER, CALLEE)
    assert started[0]["call_id"] == placed.sid
    assert [(s.status, s.previous, s.sequence) for s in statuses] == [
        ("initiated", "queued", 0),
        ("ringing", "initiated", 1),
        ("in-progress", "ringing", 2),
        ("completed", "in-progress", 3),
    ]
    assert all(s.carrier == "twilio" and s.call_id == placed.sid for s in statuses)


async def test_machine_gets_the_voicemail_after_the_beep_then_hangup() -> None:
    verdicts: list[MachineDetectionResult] = []

    async def on_machine(result: MachineDetectionResult) -> None:
        verdicts.append(result)

    message = "Hello, this is Acme. Please call us back at 555 0100."
    async with call_harness() as h:
        events: list[MachineDetected] = []
        assert h.phone._state is not None
        h.phone._state.events.on(MachineDetected, events.append)
        task = asyncio.create_task(
            h.phone.call(CALLEE, voicemail_message=message, on_machine_detection=on_machine, wait=True)
        )
        placed = await _placed(h.twilio)
        form = _create_form(h)
        assert form["MachineDetection"] == "DetectMessageEnd"  # a voicemail message implies AMD
        assert form["AsyncAmd"] == "true"
        assert form["AsyncAmdStatusCallback"] == f"https://{PUBLIC_HOST}/webhooks/twilio/amd"
        assert form["AsyncAmdStatusCallbackMethod"] == "POST"
        assert form["StatusCallback"] == f"https://{PUBLIC_HOST}/webhooks/twilio/status"
        assert form["Timeout"] == "25"

        call = await h.twilio.answer_call(placed.sid, h.server.http_url, PUBLIC_HOST)
        await _status(h, placed, "in-progress", 2)
        await call.wait_for_agent_audio(timeout=5)  # the agent greets while AMD listens
        await _amd(h, placed, "machine_end_beep")
        await call.wait_closed(timeout=5)  # the TwiML update ended the media stream
        await _amd(h, placed, "machine_end_beep")  # a duplicate delivery changes nothing
        await h.wait_ended()
        await _status(h, placed, "completed", 3, CallDuration="9")
        result = await asyncio.wait_for(task, 5)
        assert h.phone._state is not None
        await h.phone._state.outbound.drain()

    updates = h.twilio.requests_to(f"/Calls/{placed.sid}.json", "POST")
    assert len(updates) == 1
    assert updates[0].form == {
        "Twiml": '<?xml version="1.0" encoding="UTF-8"?><Response><Say>'
        + message
        + "</Say><Hangup/></Response>"
    }
    assert placed.ended_by == "rest-twiml" and placed.twiml_updates == [updates[0].form["Twiml"]]
    assert [(v.call_id, v.carrier, v.classification, v.raw) for v in verdicts] == [
        (placed.sid, "twilio", "machine", "machine_end_beep")
    ]
    assert [e.result for e in events] == verdicts
    assert result.outcome == "voicemail" and result.status == "completed"
    assert result.duration_seconds == 9.0


async def test_machine_without_a_message_is_hung_up_and_a_human_keeps_the_agent() -> None:
    async with call_harness() as h:
        call_id = await h.phone.call(CALLEE, machine_detection=True)
        placed = await _placed(h.twilio)
        assert placed.sid == call_id
        call = await h.twilio.answer_call(placed.sid, h.server.http_url, PUBLIC_HOST)
        await call.wait_for_agent_audio(timeout=5)
        await _amd(h, placed, "machine_end_silence")
        await call.wait_closed(timeout=5)

        human_id = await h.phone.call("+15550004444", machine_detection=True, ring_timeout=40)
        human = await h.twilio.answer_call(human_id, h.server.http_url, PUBLIC_HOST)
        await human.wait_for_agent_audio(timeout=5)
        await _amd(h, h.twilio.calls[human_id], "human")
        await human.wait_agent_quiet(quiet_ms=200, timeout=10)
        assert human.connected  # a human keeps talking to the agent
        await human.hangup()
        await h.wait_ended(count=2)

    [hangup] = h.twilio.requests_to(f"/Calls/{placed.sid}.json", "POST")
    assert hangup.form == {"Status": "completed"}
    assert placed.ended_by == "rest-completed"
    assert h.twilio.requests_to(f"/Calls/{human_id}.json", "POST") == []
    second = h.twilio.requests_to("/Calls.json", "POST")[1]
    assert second.form["Timeout"] == "40" and second.form["MachineDetection"] == "DetectMessageEnd"


@pytest.mark.parametrize(
    ("final", "outcome", "sip"), [("no-answer", "no_answer", "487"), ("busy", "busy", "486")]
)
async def test_unanswered_calls_end_with_their_outcome(final: str, outcome: str, sip: str) -> None:
    async with call_harness() as h:
        statuses = _statuses(h)
        task = asyncio.create_task(h.phone.call(CALLEE, ring_timeout=15, wait=True))
        placed = await _placed(h.twilio)
        assert _create_form(h)["Timeout"] == "15"
        await _status(h, placed, "initiated", 0)
        await _status(h, placed, "ringing", 1)
        # Callbacks may arrive out of order: the terminal one first, then a stale "ringing".
        await _status(h, placed, final, 3, CallDuration="0", SipResponseCode=sip)
        await _status(h, placed, "ringing", 2)
        result = await asyncio.wait_for(task, 5)

    assert result == CallResult(call_id=placed.sid, outcome=outcome, status=final, duration_seconds=0.0)  # type: ignore[arg-type]
    assert [s.status for s in statuses] == ["initiated", "ringing", final, "ringing"]
    assert placed.stream_url is None  # nobody answered: no media stream was ever opened


async def test_bad_input_and_no_server_fail_before_dialling() -> None:
    idle = Patter(carrier=Twilio("AC" + "0" * 32, "token"), phone_number=NUMBER, webhook_url=PUBLIC_HOST)
    with pytest.raises(PatterConfigError, match="needs the server running"):
        await idle.call(CALLEE)
    async with call_harness() as h:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"to": "555-0100"}, "to="),
            ({"to": CALLEE, "from_number": "0100"}, "from_number="),
            ({"to": CALLEE, "ring_timeout": 0}, "ring_timeout"),
            ({"to": CALLEE, "ring_timeout": True}, "ring_timeout"),
            ({"to": CALLEE, "machine_detection": "yes"}, "machine_detection"),
            ({"to": CALLEE, "on_machine": print, "on_machine_detection": repr}, "alias"),
            ({"to": CALLEE, "on_machine": "not callable"}, "on_machine_detection must be"),
            ({"to": CALLEE, "agent": "sales"}, "agent must be"),
            ({"to": CALLEE, "voicemail_message": 3}, "voicemail_message"),
            ({"to": CALLEE, "agent": h.phone.agent("text only", llm=OpenAILLM(api_key="k"))}, "no stt="),
        ]
        for kwargs, fragment in cases:
            with pytest.raises(PatterConfigError, match=fragment):
                await h.phone.call(**kwargs)
        assert h.twilio.requests_to("/Calls.json") == []
