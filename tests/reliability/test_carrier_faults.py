"""Carrier faults on live calls, through the real server: every real call ends exactly once, nothing else
creates a call, and the server stays healthy for the next caller."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx

from tests.fakes.twilio import new_sid, parse_connect_stream, pcm16_16k_to_mulaw_8k, tone_pcm16_16k
from tests.integration.harness import NUMBER, PUBLIC_HOST, Harness, call_harness
from tests.reliability._support import RawStream, until

GREETING = "Hello, thanks for calling."
SILENCE_FRAME = b"\xff" * 160


async def _health(h: Harness) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(h.server.http_url + "/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    return body


async def _a_following_call_works(h: Harness, ended_before: int) -> None:
    """The server is still healthy: a fresh, well-behaved call is greeted and ends once."""
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.hangup()
    await h.wait_ended(ended_before + 1)
    assert h.ended[-1]["call_id"] == call.sid
    await _settled(h)


async def _settled(h: Harness) -> None:
    await until(lambda: not h.phone.metrics_store.get_active_calls(), timeout=5)
    assert (await _health(h)).get("active_calls", 0) == 0


def _ended_ids(h: Harness) -> list[str]:
    return [e["call_id"] for e in h.ended]


async def test_media_socket_closed_without_stop_ends_the_call_once() -> None:
    async with call_harness() as h:
        stream = await RawStream.dial(h)
        await stream.start()
        for chunk in range(1, 11):
            await stream.send(stream.media_event(SILENCE_FRAME, chunk))
        await until(lambda: stream.agent_media_count() > 0)
        await stream.close(1000)  # a clean close frame, but no ``stop`` first

        await h.wait_ended()
        assert _ended_ids(h) == [stream.call_sid]
        assert h.ended[0]["reason"] == "socket_closed"
        await _settled(h)
        assert h.phone.metrics_store.get_call(stream.call_sid) is not None
        await _a_following_call_works(h, 1)
    assert len(h.ended) == 2


async def test_media_socket_aborted_before_start_creates_no_call() -> None:
    async with call_harness() as h:
        stream = await RawStream.open(h.server)
        stream.abort()
        await asyncio.sleep(0.2)
        await _a_following_call_works(h, 0)
        assert _ended_ids(h) == [h.ended[0]["call_id"]] and len(h.ended) == 1
        assert h.phone.metrics_store.get_call(stream.call_sid) is None
        await stream.aclose()


async def test_duplicate_start_is_ignored_and_the_call_runs_and_ends_once() -> None:
    started: list[dict[str, Any]] = []
    async with call_harness(
        utterances=["Are you open today?"],
        replies=["Yes, until five."],
        serve_kwargs={"on_call_start": started.append},
    ) as h:
        call = await h.dial()
        assert call.stream_sid is not None
        # The carrier retransmits its ``start`` (same stream, same call) right away.
        duplicate = {
            "event": "start",
            "start": {
                "accountSid": call.account_sid,
                "streamSid": call.stream_sid,
                "callSid": call.sid,
                "tracks": ["inbound"],
                "customParameters": call.custom_params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": call.stream_sid,
        }
        await call.send_raw(json.dumps(duplicate))
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()
        await asyncio.sleep(0.3)  # nothing else ends later
        assert len(started) == 1
        assert len(h.ended) == 1
        assert len(h.deepgram.connections) == 1  # one conversation, not two
        await _settled(h)
    assert call.protocol_errors == []
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "Are you open today?"},
        {"role": "assistant", "text": "Yes, until five."},
    ]


async def test_duplicate_and_out_of_order_media_frames_do_not_break_the_call() -> None:
    async with call_harness(utterances=["Do you deliver?"], replies=["Yes, every day."]) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        sid = call.stream_sid
        assert sid is not None

        def media(chunk: int, payload: bytes, seq: int) -> str:
            return json.dumps(
                {
                    "event": "media",
                    "sequenceNumber": str(seq),
                    "media": {
                        "track": "inbound",
                        "chunk": str(chunk),
                        "timestamp": str(chunk * 20),
                        "payload": base64.b64encode(payload).decode(),
                    },
                    "streamSid": sid,
                }
            )

        # Silence frames delivered twice, then a run delivered backwards, with stale sequence numbers.
        for chunk in range(5000, 5010):
            frame = media(chunk, SILENCE_FRAME, chunk)
            await call.send_raw(frame)
            await call.send_raw(frame)
        for chunk in reversed(range(5010, 5020)):
            await call.send_raw(media(chunk, SILENCE_FRAME, 3))
        await call.silence(200)
        assert call.connected

        # The conversation carries on: the next turn is heard, understood and answered.
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()
        await _settled(h)
    assert call.protocol_errors == []
    assert len(h.ended) == 1
    assert h.ended[0]["transcript"][-2:] == [
        {"role": "user", "text": "Do you deliver?"},
        {"role": "assistant", "text": "Yes, every day."},
    ]


async def test_tone_delivered_as_duplicated_frames_is_still_one_utterance() -> None:
    """Duplicated speech frames (a carrier retransmitting) never turn one utterance into two turns."""
    async with call_harness(utterances=["Hello there.", "Second."], replies=["Hi!", "Bye."]) as h:
        stream = await RawStream.dial(h)
        await stream.start()
        await until(lambda: stream.agent_media_count() > 0)
        tone = pcm16_16k_to_mulaw_8k(tone_pcm16_16k(400))
        frames = [tone[i : i + 160] for i in range(0, len(tone), 160)]
        chunk = 0
        for frame in frames:
            chunk += 1
            event = stream.media_event(frame, chunk)
            await stream.send(event)
            await stream.send(dict(event, sequenceNumber=str(stream.seq)))  # same frame again
            await asyncio.sleep(0.01)
        for _ in range(60):  # 1.2 s of trailing silence, paced, so the turn ends
            chunk += 1
            await stream.send(stream.media_event(SILENCE_FRAME, chunk))
            await asyncio.sleep(0.02)
        await until(lambda: len(h.llm.requests) >= 1, timeout=5)
        await stream.stop()
        await h.wait_ended()
        await stream.aclose()
    assert h.llm.user_texts() == ["Hello there."]
    assert len(h.ended) == 1


async def test_stop_for_an_unknown_stream_does_not_end_the_live_call() -> None:
    async with call_harness(utterances=["Still there?"], replies=["Yes, I am."]) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        other = {
            "event": "stop",
            "sequenceNumber": "77",
            "stop": {"accountSid": call.account_sid, "callSid": "CA" + "e" * 32},
            "streamSid": "MZ" + "e" * 32,
        }
        await call.send_raw(json.dumps(other))
        await call.silence(300)
        assert call.connected, f"a stop for another stream ended the call ({call.ended_by})"
        assert h.ended == []
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.hangup()
        await h.wait_ended()
    assert len(h.ended) == 1


async def test_stop_on_a_socket_that_never_started_creates_no_call() -> None:
    async with call_harness() as h:
        stream = await RawStream.open(h.server)
        await stream.stop(stream_sid="MZ" + "d" * 32, call_sid="CA" + "d" * 32)
        await until(lambda: stream.ws.close_code is not None or stream.ws.state.name == "CLOSED", timeout=5)
        await stream.aclose()
        await asyncio.sleep(0.2)
        assert h.ended == []
        assert h.phone.metrics_store.get_active_calls() == []
        assert h.phone.metrics_store.call_count == 0
        await _a_following_call_works(h, 0)


async def test_the_same_voice_webhook_delivered_twice_makes_one_call() -> None:
    started: list[dict[str, Any]] = []
    async with call_harness(serve_kwargs={"on_call_start": started.append}) as h:
        sid = new_sid("CA")
        form = h.twilio.voice_form(call_sid=sid, from_="+15550001111", to=NUMBER)
        first = await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form)
        again = await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form)
        assert first.status_code == again.status_code == 200
        # Same answer, same stream URL; only the one-socket stream token differs (either one works).
        url_1, params_1, _ = parse_connect_stream(first.text)
        url_2, params_2, _ = parse_connect_stream(again.text)
        assert url_1 == url_2 and params_1.pop("stream_token") != params_2.pop("stream_token")
        assert params_1 == params_2
        # A webhook alone is not a call.
        assert started == [] and h.phone.metrics_store.get_active_calls() == []
        assert h.deepgram.connections == []

        call = await h.dial(call_sid=sid)  # Twilio's third delivery, then the one media stream
        await call.wait_for_agent_audio(timeout=5)
        await call.hangup()
        await h.wait_ended()
        await asyncio.sleep(0.3)
        await _settled(h)
        assert len(started) == 1 and started[0]["call_id"] == sid
        assert _ended_ids(h) == [sid]
        store = h.phone.metrics_store
        assert [c["call_id"] for c in store.get_calls()] == [sid]
        assert store.call_count == 1


async def test_status_callback_for_a_call_we_never_saw_leaves_no_phantom_call() -> None:
    async with call_harness() as h:
        store = h.phone.metrics_store
        for status, seq in (("ringing", 1), ("in-progress", 2), ("completed", 3)):
            ghost = new_sid("CA")
            form = {
                **h.twilio.voice_form(call_sid=ghost, from_="+15550001111", to=NUMBER, status=status),
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(seq),
                "CallDuration": "12",
            }
            response = await h.twilio.post_webhook(
                h.server.http_url, PUBLIC_HOST, "/webhooks/twilio/status", form
            )
            assert response.status_code == 204
            assert response.content == b""
            assert store.get_call(ghost) is None
        assert store.get_active_calls() == []
        assert store.call_count == 0
        assert h.ended == []
        assert (await _health(h)).get("active_calls", 0) == 0
        await _a_following_call_works(h, 0)
        assert store.call_count == 1


async def test_many_faults_in_a_row_then_a_clean_call() -> None:
    """A burst of broken streams (each fault once) leaves exactly one end per started call."""
    async with call_harness() as h:
        started_sids: list[str] = []
        # 1) started then aborted (TCP reset), 2) started then closed, 3) started then stopped twice,
        # 4) never started, closed.
        for mode in ("abort", "close", "double-stop", "no-start"):
            stream = await (RawStream.dial(h) if mode != "no-start" else RawStream.open(h.server))
            if mode != "no-start":
                await stream.start()
                started_sids.append(stream.call_sid)
                await until(lambda s=stream: s.agent_media_count() > 0)
            if mode == "abort":
                stream.abort()
                await stream.aclose()
            elif mode == "double-stop":
                await stream.stop()
                await stream.stop()
                await stream.aclose()
            else:
                await stream.close()
        await h.wait_ended(len(started_sids))
        await asyncio.sleep(0.3)
        assert sorted(_ended_ids(h)) == sorted(started_sids)
        await _settled(h)
        await _a_following_call_works(h, len(started_sids))
