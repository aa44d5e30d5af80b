"""Real inbound Telnyx calls in pipeline mode, end to end over real sockets (fake Telnyx + fake vendors)."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fakes.telnyx import FakeTelnyxCall, sign
from tests.integration.telnyx_harness import NUMBER, PUBLIC_HOST, TelnyxHarness, telnyx_harness

CALLER = "+15550001111"
GREETING = "Hello, thanks for calling."


async def _two_turns(h: TelnyxHarness) -> FakeTelnyxCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)  # the greeting
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    for ms in (600, 500):
        await call.say_tone(ms)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.hangup()
    await h.wait_ended()
    return call


def _assert_transcript(h: TelnyxHarness, call: FakeTelnyxCall) -> None:
    assert call.protocol_errors == []
    assert len(h.ended) == 1
    end = h.ended[0]
    assert end["call_id"] == call.call_control_id
    assert end["caller"] == CALLER and end["callee"] == NUMBER
    assert end["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "What are your opening hours?"},
        {"role": "assistant", "text": "We are open nine to five. Anything else?"},
        {"role": "user", "text": "Thanks, goodbye."},
        {"role": "assistant", "text": "Have a great day."},
    ]
    assert h.tts.texts == [GREETING, "We are open nine to five.", "Anything else?", "Have a great day."]
    assert h.started[0]["telephony_provider"] == "telnyx"


def _assert_answer(h: TelnyxHarness, call: FakeTelnyxCall, codec: str, rate: int) -> None:
    [answer] = h.telnyx.commands("answer")
    assert answer.authorization == f"Bearer {h.telnyx.api_key}"
    assert answer.content_type.startswith("application/json")
    assert answer.call_control_id == call.call_control_id
    assert answer.status == 200
    assert answer.body is not None
    url = answer.body.pop("stream_url")
    assert answer.body == {
        "stream_track": "inbound_track",
        "stream_codec": codec,
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": codec,
        "stream_bidirectional_sampling_rate": rate,
    }
    assert url.startswith(f"wss://{PUBLIC_HOST}/ws/telnyx/stream/")
    assert "caller=%2B15550001111" in url and "callee=%2B15550002222" in url
    # The call control id went into the REST path percent-encoded (it holds a ':').
    assert answer.path == "/v2/calls/" + call.call_control_id + "/actions/answer"


async def test_two_turn_call_over_l16_passes_caller_audio_to_stt_byte_for_byte() -> None:
    async with telnyx_harness(
        codec="L16",
        utterances=["What are your opening hours?", "Thanks, goodbye."],
        replies=["We are open nine to five. Anything else?", "Have a great day."],
    ) as h:
        call = await _two_turns(h)
        _assert_answer(h, call, "L16", 16000)
        _assert_transcript(h, call)

        # Inbound: the fake sent big-endian L16 on the wire; STT got exactly the little-endian samples.
        sent = call.caller_audio()
        speech = next(f for f in call.sent_frames if f.is_speech)
        n = len(speech.audio) // 2
        assert struct.unpack(f">{n}h", speech.wire) == struct.unpack(f"<{n}h", speech.audio)
        assert speech.wire != speech.audio  # a tone is not byte-order symmetric: the swap really happened
        [conn] = h.deepgram.connections
        got = bytes(conn.audio)
        assert conn.query["encoding"] == "linear16" and conn.query["sample_rate"] == "16000"
        last_speech = max(i for i, f in enumerate(call.sent_frames) if f.is_speech)
        assert len(got) >= 640 * (last_speech + 1)  # everything up to the end of the last utterance
        assert got == sent[: len(got)]
        # Outbound: the agent's audio came back as valid L16 at 16 kHz (640 bytes per 20 ms).
        agent = call.agent_audio()
        expected_chars = sum(len(t) for t in h.tts.texts)
        assert len(agent) >= expected_chars * 20 * 32 * 0.95
        assert all(len(r.payload) % 2 == 0 for r in call.received if r.kind == "media")  # type: ignore[arg-type]
        # The caller's hang-up reached the product as a stop; no REST hang-up was needed.
        assert call.ended_by == "caller-hangup"
        assert h.ended[0]["reason"] == "stopped"


async def test_two_turn_call_over_pcmu() -> None:
    async with telnyx_harness(
        codec="PCMU",
        utterances=["What are your opening hours?", "Thanks, goodbye."],
        replies=["We are open nine to five. Anything else?", "Have a great day."],
    ) as h:
        call = await _two_turns(h)
        _assert_answer(h, call, "PCMU", 8000)
        _assert_transcript(h, call)
        expected_chars = sum(len(t) for t in h.tts.texts)
        assert len(call.agent_audio()) >= expected_chars * 20 * 8 * 0.95  # mu-law 8 kHz: 8 bytes/ms
        [conn] = h.deepgram.connections
        # DeepgramSTT() with its format unset takes the carrier's own: PCMU passes through, 1 byte a sample.
        assert (conn.query["encoding"], conn.query["sample_rate"]) == ("mulaw", "8000")
        assert len(conn.audio) >= (600 + 500) * 8


async def test_agent_hangup_after_goodbye_uses_call_control_hangup() -> None:
    async def on_message(event: dict[str, Any], call_control: Any) -> str:
        await call_control.hangup()
        return "Goodbye."

    async with telnyx_harness(utterances=["Bye"], on_message=on_message) as h:
        call = await h.dial()
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_closed(timeout=10)
        await h.wait_ended()
    [hangup] = h.telnyx.commands("hangup")
    assert hangup.body == {} and hangup.call_control_id == call.call_control_id
    assert hangup.authorization == f"Bearer {h.telnyx.api_key}"
    assert call.ended_by == "rest-hangup"
    assert h.ended[0]["reason"] == "agent_hangup"
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Goodbye."}
    assert h.tts.texts[-1] == "Goodbye."  # the goodbye was spoken before the hang-up


async def test_transfer_uses_call_control_transfer() -> None:
    async def on_message(event: dict[str, Any], call_control: Any) -> str:
        await call_control.transfer("+15557654321")
        return ""

    async with telnyx_harness(utterances=["Agent please"], on_message=on_message) as h:
        call = await h.dial()
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_closed(timeout=10)
        await h.wait_ended()
    [transfer] = h.telnyx.commands("transfer")
    assert transfer.body == {"to": "+15557654321"}
    assert call.ended_by == "rest-transfer"
    assert h.ended[0]["reason"] == "transferred"


def _initiated(h: TelnyxHarness) -> bytes:
    call = h.telnyx.new_inbound()
    return json.dumps(h.telnyx.envelope("call.initiated", call, direction="incoming")).encode()


async def _no_call(h: TelnyxHarness) -> None:
    assert h.telnyx.commands("answer") == []
    assert h.started == [] and h.deepgram.connections == []


@pytest.mark.parametrize("how", ["forged", "wrong_key", "stale", "future", "unsigned", "tampered"])
async def test_bad_signatures_are_refused_with_403(how: str) -> None:
    async with telnyx_harness() as h:
        body = _initiated(h)
        post = h.telnyx.post_webhook
        url = h.server.http_url
        if how == "forged":
            response = await post(url, body, signature=base64.b64encode(b"\x01" * 64).decode())
        elif how == "wrong_key":
            response = await post(url, body, key=Ed25519PrivateKey.generate())
        elif how == "stale":
            response = await post(url, body, timestamp=int(time.time()) - 301)
        elif how == "future":
            response = await post(url, body, timestamp=int(time.time()) + 120)  # skew allowed: 30 s
        elif how == "unsigned":
            response = await post(url, body, sign_it=False)
        else:  # signed over one body, delivered with another
            ts = int(time.time())
            sig = sign(h.telnyx.signing_key, str(ts), body)
            response = await post(url, body.replace(b"incoming", b"outgoing"), signature=sig, timestamp=ts)
        assert response.status_code == 403
        await _no_call(h)


async def test_unsigned_webhooks_are_accepted_without_a_key_but_refused_in_strict_mode() -> None:
    async with telnyx_harness(signed=False, replies=["Hi."]) as h:
        call = await h.dial()  # the fake still signs, but nobody checks: the call goes through
        await call.wait_for_agent_audio(timeout=5)
        response = await h.telnyx.post_webhook(h.server.http_url, _initiated(h), sign_it=False)
        assert response.status_code == 200
        await call.hangup()
        await h.wait_ended()
    async with telnyx_harness(strict_signatures=True) as h:
        response = await h.telnyx.post_webhook(h.server.http_url, _initiated(h), sign_it=False)
        assert response.status_code == 403
        await _no_call(h)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"data": []}',
        b'{"data": {"event_type": "call.initiated"}}',
        b'{"data": {"event_type": "call.initiated", "payload": {"call_control_id": 7}}}',
    ],
)
async def test_malformed_webhooks_are_400(body: bytes) -> None:
    async with telnyx_harness() as h:
        response = await h.telnyx.post_webhook(h.server.http_url, body)
        assert response.status_code == 400
        await _no_call(h)


async def test_duplicate_delivery_answers_once() -> None:
    async with telnyx_harness() as h:
        body = _initiated(h)
        for _ in range(2):
            assert (await h.telnyx.post_webhook(h.server.http_url, body)).status_code == 200
        call = h.telnyx.calls[json.loads(body)["data"]["payload"]["call_control_id"]]
        await asyncio.wait_for(call.answered.wait(), 5)
        await asyncio.sleep(0.1)  # a second answer, if one were coming, would have been sent by now
        assert len(h.telnyx.commands("answer")) == 1


LONG_REPLY = (
    "First we open the account settings page. Then you scroll down to the billing section. "
    "There you find the list of your past invoices. Finally the file is saved to your computer."
)


@pytest.mark.parametrize("codec", ["L16", "PCMU"])
async def test_barge_in_over_telnyx_clears_and_keeps_only_the_heard_part(codec: str) -> None:
    async with telnyx_harness(
        codec=codec,
        utterances=["How do I get my invoice?", "Wait, stop."],
        replies=[LONG_REPLY, "Sure, I stopped."],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        started = await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await asyncio.sleep(1.3)
        await call.say_tone(800)
        onset = call.speech_onsets[-1]
        await call.wait_for_agent_audio(after=onset + 0.8, timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    clears = [t for t in call.clear_times if t > started]
    assert len(clears) == 1 and onset < clears[0] <= onset + 0.4
    transcript = h.ended[0]["transcript"]
    heard = transcript[2]["text"]
    assert heard.startswith("First we open the account settings page.") and LONG_REPLY.startswith(heard)
    assert heard != LONG_REPLY
    assert transcript[-1] == {"role": "assistant", "text": "Sure, I stopped."}


async def test_dtmf_over_telnyx_reaches_the_agent() -> None:
    async with telnyx_harness(utterances=[], replies=["You pressed five."]) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        pressed = time.monotonic()
        await call.dtmf("5")
        await call.wait_for_agent_audio(after=pressed, timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    assert h.llm.requests[-1]["messages"][-1] == {"role": "user", "content": "[DTMF: 5]"}
    assert h.ended[0]["transcript"][-2:] == [
        {"role": "user", "text": "[DTMF: 5]"},
        {"role": "assistant", "text": "You pressed five."},
    ]
