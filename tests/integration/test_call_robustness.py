"""A live call survives garbage on the media socket and ends exactly once however the caller leaves."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx

from tests.fakes.twilio import FakeCall, pcm16_16k_to_mulaw_8k, tone_pcm16_16k
from tests.integration.harness import Harness, call_harness

GREETING = "Hello, thanks for calling."
LONG_REPLY = (
    "First we open the account settings page. "
    "Then you scroll down to the billing section. "
    "There you find the list of your past invoices. "
    "Pick the invoice you want and press download. "
    "Finally the file is saved to your computer."
)


async def _greeted(h: Harness) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    return call


async def _turn(call: FakeCall, ms: float = 500) -> None:
    """The caller says something and the agent's whole answer plays."""
    await call.say_tone(ms)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)


async def _active_calls(h: Harness) -> int:
    async with httpx.AsyncClient(timeout=5.0) as client:
        body = (await client.get(h.server.http_url + "/health")).json()
    return int(body.get("active_calls", 0))


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll state the fakes record (they offer no event for it), up to ``timeout`` seconds."""
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"condition not met within {timeout} s")


def _stt_bytes_for_ms(h: Harness, ms: float) -> float:
    """Bytes of ``ms`` of audio in the format the product streams to the (fake) Deepgram."""
    query = h.deepgram.connections[0].query
    sample_bytes = 2 if query["encoding"] == "linear16" else 1
    return ms * int(query["sample_rate"]) / 1000 * sample_bytes


async def _until_a_reply_sentence_heard(call: FakeCall, marks_before: int) -> None:
    """Wait until the first sentence of the current reply has played (its mark came back, not cleared)."""
    await _until(lambda: any(not m.cleared for m in call.marks_echoed[marks_before:]), timeout=5)


def _huge_loud_media_frame(stream_sid: str) -> str:
    """A well-formed ``media`` message over 1 MiB, full of loud caller audio (~100 s of tone).

    If the server did not drop it, the STT would hear a long extra utterance and the transcript would
    shift, so the test can tell "dropped" from "ignored by luck".
    """
    second = pcm16_16k_to_mulaw_8k(tone_pcm16_16k(1000, dbfs=-6))
    payload = base64.b64encode(second * 100).decode("ascii")
    frame = json.dumps(
        {
            "event": "media",
            "sequenceNumber": "999999",
            "media": {"track": "inbound", "chunk": "99999", "timestamp": "0", "payload": payload},
            "streamSid": stream_sid,
        }
    )
    assert len(frame) > 1024 * 1024
    return frame


def _malformed_frames(call: FakeCall) -> list[str]:
    sid = call.stream_sid
    return [
        "this is not JSON {",  # bad JSON
        json.dumps({"event": "bogus", "streamSid": sid, "bogus": {"x": 1}}),  # unknown event
        json.dumps(
            {
                "event": "media",
                "streamSid": sid,
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": "@@not base64!!"},
            }
        ),  # media with bad base64
        _huge_loud_media_frame(sid),  # > 1 MiB text frame
        json.dumps([{"event": "stop", "streamSid": sid, "stop": {"callSid": call.sid}}]),  # array
        # A few more shapes of garbage, each of which would change the call if it were not dropped.
        json.dumps({"event": "media", "streamSid": sid}),
        json.dumps({"event": "media", "streamSid": sid, "media": {"payload": 12345}}),
        json.dumps({"event": "dtmf", "streamSid": sid, "dtmf": {"track": "inbound_track", "digit": "X"}}),
        json.dumps({"event": "dtmf", "streamSid": sid, "dtmf": "5"}),
        json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "not-one-of-ours"}}),
        json.dumps({"event": 7, "streamSid": sid}),
        json.dumps({"streamSid": sid}),
        "null",
        "42",
        '"stop"',
    ]


async def test_malformed_media_frames_are_dropped_and_the_call_goes_on() -> None:
    async with call_harness(
        utterances=["What are your opening hours?", "Thanks, goodbye."],
        replies=["We are open nine to five.", "Have a great day."],
    ) as h:
        call = await _greeted(h)

        for frame in _malformed_frames(call):
            await call.send_raw(frame)
        await call.silence(300)  # real frames keep flowing after the garbage
        assert call.connected, f"server ended the call on garbage: {call.ended_by}"

        await _turn(call)
        # Garbage again in the middle of the agent's next answer, then the caller carries on.
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        for frame in _malformed_frames(call):
            await call.send_raw(frame)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        assert call.connected
        await call.hangup()
        await h.wait_ended()

    assert len(h.ended) == 1
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "What are your opening hours?"},
        {"role": "assistant", "text": "We are open nine to five."},
        {"role": "user", "text": "Thanks, goodbye."},
        {"role": "assistant", "text": "Have a great day."},
    ]
    assert h.llm.user_texts() == ["What are your opening hours?", "Thanks, goodbye."]
    # The huge frame's 100 s of tone never reached the STT: only the paced caller audio did.
    assert h.deepgram.bytes_received <= _stt_bytes_for_ms(h, call.media_frames_sent * 20 + 200)
    # The server never answered garbage with garbage.
    assert call.protocol_errors == []
    assert call.ended_by == "caller-hangup"


async def test_empty_text_frame_is_dropped_not_taken_as_a_disconnect() -> None:
    async with call_harness(utterances=["Are you open today?"], replies=["Yes, until five."]) as h:
        call = await _greeted(h)
        await call.send_raw("")
        await call.silence(300)
        assert call.connected, f"call ended after an empty frame: {call.ended_by}"
        await _turn(call)
        await call.hangup()
        await h.wait_ended()
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Yes, until five."}


async def test_a_second_start_mid_call_does_not_hijack_the_stream() -> None:
    async with call_harness(utterances=["Are you open today?"], replies=["Yes, until five."]) as h:
        call = await _greeted(h)
        rogue = {
            "event": "start",
            "start": {
                "accountSid": call.account_sid,
                "streamSid": "MZ" + "f" * 32,
                "callSid": "CA" + "f" * 32,
                "tracks": ["inbound"],
                "customParameters": {"caller": "+15550009999", "callee": "+15550002222"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": "MZ" + "f" * 32,
        }
        await call.send_raw(json.dumps(rogue))
        await call.silence(200)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()
    assert call.protocol_errors == []
    assert h.ended[0]["caller"] == "+15550001111"
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Yes, until five."}


async def test_caller_socket_dropped_without_stop_ends_the_call_once() -> None:
    async with call_harness(utterances=["Do you deliver?"], replies=["Yes, we deliver every day."]) as h:
        call = await _greeted(h)
        await _turn(call)
        await call.drop()  # TCP abort: no stop, no close frame

        await h.wait_ended(timeout=10)
        await asyncio.sleep(1.0)  # nothing fires twice later on
        assert len(h.ended) == 1
        # The server let go of the call and of its vendor socket.
        assert await _active_calls(h) == 0
        await _until(lambda: all(c.close_code is not None for c in h.deepgram.connections))

    end = h.ended[0]
    assert end["call_id"] == call.sid
    assert end["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "Do you deliver?"},
        {"role": "assistant", "text": "Yes, we deliver every day."},
    ]
    # The caller's leaving is not a reason to hang up through REST: the call is already gone.
    assert h.twilio.requests_to(f"/Calls/{call.sid}.json", "POST") == []


async def test_caller_socket_dropped_mid_reply_ends_once_with_the_heard_part_only() -> None:
    async with call_harness(utterances=["How do I get my invoice?"], replies=[LONG_REPLY]) as h:
        call = await _greeted(h)
        marks_before = len(call.marks_echoed)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await _until_a_reply_sentence_heard(call, marks_before)
        await call.drop()

        await h.wait_ended(timeout=10)
        await asyncio.sleep(1.0)
        assert len(h.ended) == 1
        assert await _active_calls(h) == 0

    transcript = h.ended[0]["transcript"]
    assert transcript[:2] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "How do I get my invoice?"},
    ]
    assert len(transcript) == 3 and transcript[2]["role"] == "assistant"
    heard = transcript[2]["text"]
    assert heard.startswith("First we open the account settings page.")
    assert LONG_REPLY.startswith(heard) and heard != LONG_REPLY


async def test_caller_stop_mid_reply_ends_once_and_closes_the_in_flight_turn() -> None:
    async with call_harness(
        utterances=["How do I get my invoice?"], replies=[LONG_REPLY], ms_per_char=20.0
    ) as h:
        call = await _greeted(h)
        marks_before = len(call.marks_echoed)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await _until_a_reply_sentence_heard(call, marks_before)
        await call.hangup()  # stop + close 1000 while the agent is still talking

        await h.wait_ended(timeout=10)
        await asyncio.sleep(1.0)
        assert len(h.ended) == 1
        assert await _active_calls(h) == 0
        await _until(lambda: all(c.close_code is not None for c in h.deepgram.connections))

    assert call.ended_by == "caller-hangup"
    end = h.ended[0]
    transcript = end["transcript"]
    assert transcript[:2] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "How do I get my invoice?"},
    ]
    # The in-flight answer was closed with what the caller actually heard: at least its first sentence,
    # never the whole reply (most of it was still to play when the caller left).
    assert len(transcript) == 3 and transcript[2]["role"] == "assistant"
    heard = transcript[2]["text"]
    assert heard.startswith("First we open the account settings page.")
    assert LONG_REPLY.startswith(heard) and heard != LONG_REPLY
    # on_transcript saw the same closed turn, and nothing after the stop.
    assert [(t["role"], t["text"]) for t in h.transcripts] == [(e["role"], e["text"]) for e in transcript]
    assert h.twilio.requests_to(f"/Calls/{call.sid}.json", "POST") == []


async def test_caller_stop_during_the_greeting_ends_once() -> None:
    async with call_harness(first_message=LONG_REPLY) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.hangup()
        await h.wait_ended(timeout=10)
        await asyncio.sleep(1.0)
        assert len(h.ended) == 1
        assert await _active_calls(h) == 0
    transcript = h.ended[0]["transcript"]
    # Hardly anything of the greeting was heard; whatever is recorded is a prefix of it.
    assert all(t["role"] == "assistant" for t in transcript)
    assert len(transcript) <= 1
    if transcript:
        assert LONG_REPLY.startswith(transcript[0]["text"]) and transcript[0]["text"] != LONG_REPLY


async def test_on_message_that_raises_does_not_kill_the_call() -> None:
    calls = 0

    async def on_message(event: dict[str, Any]) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("backend down")
        return "Sorry about that, how can I help?"

    async with call_harness(
        utterances=["Hello?", "Are you there?"], use_llm=False, serve_kwargs={"on_message": on_message}
    ) as h:
        call = await _greeted(h)
        await call.say_tone(500)
        await call.silence(1500)  # the failed turn: nothing useful to say
        await _turn(call)
        assert call.connected
        await call.hangup()
        await h.wait_ended()

    assert calls == 2
    transcript = h.ended[0]["transcript"]
    assert transcript[0] == {"role": "assistant", "text": GREETING}
    assert transcript[-2:] == [
        {"role": "user", "text": "Are you there?"},
        {"role": "assistant", "text": "Sorry about that, how can I help?"},
    ]
    assert {"role": "user", "text": "Hello?"} in transcript
