"""Outbound Telnyx calls, and transfer by the ``transfer_call`` tool, through the real server.

The fake Telnyx records the ``POST /calls`` dial (asserted field by field); the test plays the carrier's
side of an outbound call as Telnyx does it (telnyx.md §2.1, §3): signed ``call.initiated`` /
``call.answered`` webhooks echoing the dial's ``client_state``, the media stream opened once the product
sends ``streaming_start``, AMD events, and ``call.hangup`` with its cause.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.client import connect

import tests.fakes.telnyx as fake_telnyx
from getpatter.call.results import CallResult, MachineDetectionResult
from tests.fakes.openai_chat import Reply
from tests.fakes.telnyx import FakeTelnyxCall, RecordedCommand
from tests.integration.telnyx_harness import NUMBER, PUBLIC_HOST, TelnyxHarness, telnyx_harness

CALLEE = "+15550003333"
GREETING = "Hi, this is Acme calling about your order."


async def _until(predicate: Any, timeout: float = 5.0) -> Any:
    async def poll() -> Any:
        while not (value := predicate()):
            await asyncio.sleep(0.01)
        return value

    return await asyncio.wait_for(poll(), timeout)


async def _dialled(h: TelnyxHarness) -> tuple[FakeTelnyxCall, dict[str, Any]]:
    """The call the product dialled; like Telnyx, the fake now echoes the dial's ``client_state``."""
    [dial] = await _until(lambda: h.telnyx.commands("dial"))
    assert dial.status == 200 and dial.body is not None
    assert dial.authorization == f"Bearer {h.telnyx.api_key}"
    call = next(c for c in h.telnyx.calls.values() if c.direction == "outgoing")
    call.client_state = dial.body.get("client_state")
    h.telnyx._server = (h.server.http_url, PUBLIC_HOST)  # where the fake posts call.hangup
    return call, dict(dial.body)


async def _event(h: TelnyxHarness, event_type: str, call: FakeTelnyxCall, **extra: Any) -> None:
    response = await h.telnyx.post_webhook(h.server.http_url, h.telnyx.envelope(event_type, call, **extra))
    assert response.status_code == 200


async def _command(h: TelnyxHarness, action: str, call: FakeTelnyxCall) -> RecordedCommand:
    found = await _until(
        lambda: [c for c in h.telnyx.commands(action) if c.call_control_id == call.call_control_id]
    )
    command: RecordedCommand = found[-1]
    assert command.status == 200, command
    return command


async def _answer(h: TelnyxHarness, call: FakeTelnyxCall) -> dict[str, Any]:
    """The callee picks up: ``call.answered``, then the media stream the product asks for."""
    await _event(h, "call.initiated", call, direction="outgoing")
    call.state = "answered"
    await _event(h, "call.answered", call)
    start = await _command(h, "streaming_start", call)
    assert start.body is not None
    url = str(start.body["stream_url"])
    call.stream_url = url
    await _event(h, "streaming.started", call, stream_url=url)
    parts = urlsplit(url)
    local = f"ws://{urlsplit(h.server.http_url).netloc}{parts.path}?{parts.query}"
    ws = await connect(local, open_timeout=5, close_timeout=2, max_size=16 * 1024 * 1024)
    await call._attach(ws, str(uuid.uuid4()).upper(), str(start.body["stream_codec"]))
    return dict(start.body)


def _client_state(dial: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(dial["client_state"]))
    return decoded


async def test_answered_by_a_human_streams_on_answer_and_has_a_conversation() -> None:
    async with telnyx_harness(
        utterances=["Yes, that works for me."], replies=["Great, see you on Monday."]
    ) as h:
        task = asyncio.create_task(h.phone.call(CALLEE, first_message=GREETING, wait=True))
        call, dial = await _dialled(h)
        client_state = dial.pop("client_state")
        assert dial == {
            "connection_id": h.telnyx.connection_id,
            "to": CALLEE,
            "from": NUMBER,
            "timeout_secs": 25,
        }  # no answering_machine_detection: it defaults to off
        marker = _client_state({"client_state": client_state})
        assert len(marker.pop("sig")) == 64  # HMAC-SHA256: a marker nobody else can forge
        assert marker == {"getpatter": "getpatter-outbound", "first_message": GREETING}
        assert h.telnyx.commands("streaming_start") == []  # media waits for the answer

        start = await _answer(h, call)
        url = start.pop("stream_url")
        assert start == {
            "stream_track": "inbound_track",
            "stream_codec": "L16",
            "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": "L16",
            "stream_bidirectional_sampling_rate": 16000,
        }
        parts = urlsplit(url)
        assert parts.scheme == "wss" and parts.netloc == PUBLIC_HOST
        assert parts.path == "/ws/telnyx/stream/" + call.call_control_id.replace(":", "%3A")
        query = parse_qs(parts.query)
        token = query.pop("stream_token")  # the signed stream token, verified when the socket starts
        assert len(token) == 1 and token[0].startswith("v1.")
        assert query == {
            "caller": [NUMBER],
            "callee": [CALLEE],
            "direction": ["outbound"],
            "first_message": [GREETING],
        }

        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()
        await _event(h, "call.hangup", call, hangup_cause="normal_clearing", hangup_source="callee")
        result = await asyncio.wait_for(task, 5)

    assert call.protocol_errors == []
    assert result.outcome == "answered" and result.status == "completed"
    assert result.transcript == (
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "Yes, that works for me."},
        {"role": "assistant", "text": "Great, see you on Monday."},
    )
    assert result.duration_seconds is not None and result.duration_seconds > 0
    assert h.started[0]["direction"] == "outbound"
    assert (h.started[0]["caller"], h.started[0]["callee"]) == (NUMBER, CALLEE)


async def test_machine_gets_the_voicemail_spoken_after_the_greeting_then_hangup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fake predates voicemail drops: teach it ``speak`` with the doc's fields (telnyx.md §2.3).
    allowed = {"client_state", "command_id", "payload_type", "language", "service_level"}
    monkeypatch.setitem(fake_telnyx._ACTIONS, "speak", ({"payload", "voice"}, allowed))
    verdicts: list[MachineDetectionResult] = []
    message = "Hello, this is Acme. Please call us back."
    async with telnyx_harness() as h:
        task = asyncio.create_task(
            h.phone.call(CALLEE, voicemail_message=message, on_machine=verdicts.append, wait=True)
        )
        call, dial = await _dialled(h)
        assert dial["answering_machine_detection"] == "greeting_end"
        await _answer(h, call)
        await call.wait_for_agent_audio(timeout=5)  # the agent greets while AMD listens
        await _event(h, "call.machine.detection.ended", call, result="machine")
        assert h.telnyx.commands("hangup") == []  # a message is waiting for the end of the greeting
        await _event(h, "call.machine.greeting.ended", call, result="beep_detected")
        speak = await _command(h, "speak", call)
        assert speak.body == {"payload": message, "payload_type": "text", "voice": "Polly.Joanna"}
        stop = await _command(h, "streaming_stop", call)
        assert h.telnyx.requests.index(stop) < h.telnyx.requests.index(speak)  # the agent stops first
        await _event(h, "call.speak.ended", call, status="completed")
        await _command(h, "hangup", call)  # the fake then posts call.hangup (normal_clearing)
        result = await asyncio.wait_for(task, 5)

    assert [(v.call_id, v.carrier, v.classification, v.raw) for v in verdicts] == [
        (call.call_control_id, "telnyx", "machine", "machine")
    ]
    assert result.outcome == "voicemail" and result.status == "completed"
    assert call.ended_by == "rest-hangup"


@pytest.mark.parametrize(
    ("cause", "outcome", "status"),
    [("timeout", "no_answer", "no-answer"), ("user_busy", "busy", "busy"), ("not_found", "failed", "failed")],
)
async def test_unanswered_calls_end_with_the_outcome_of_their_hangup_cause(
    cause: str, outcome: str, status: str
) -> None:
    async with telnyx_harness() as h:
        task = asyncio.create_task(h.phone.call(CALLEE, machine_detection=True, ring_timeout=30, wait=True))
        call, dial = await _dialled(h)
        assert dial["timeout_secs"] == 30 and dial["answering_machine_detection"] == "greeting_end"
        await _event(h, "call.initiated", call, direction="outgoing")
        call.state = "hangup"
        await _event(h, "call.hangup", call, hangup_cause=cause, hangup_source="callee")
        result = await asyncio.wait_for(task, 5)

    assert result == CallResult(call_id=call.call_control_id, outcome=outcome, status=status)  # type: ignore[arg-type]
    assert h.telnyx.commands("streaming_start") == []


async def test_transfer_call_tool_transfers_through_call_control() -> None:
    async with telnyx_harness(
        utterances=["Put me through to sales"],
        replies=[Reply(tool_calls=[("transfer_call", '{"number": "+15550009999"}')])],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_closed(timeout=10)
        await h.wait_ended()

    [transfer] = h.telnyx.commands("transfer")
    assert transfer.call_control_id == call.call_control_id
    assert transfer.body == {"to": "+15550009999"}
    assert transfer.authorization == f"Bearer {h.telnyx.api_key}"
    assert call.ended_by == "rest-transfer"
    assert h.ended[0]["reason"] == "transferred"
