"""OpenAIRealtime against the strict fake Realtime server (real WebSocket on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from getpatter.audio.format import MULAW_8K, PCM16_16K, PCM16_24K
from getpatter.engines import openai as ns
from getpatter.engines._realtime_events import EventMapper
from getpatter.engines.base import (
    AgentTranscript,
    AudioOut,
    CallerSpeechStarted,
    CallerSpeechStopped,
    EngineConfig,
    EngineError,
    EngineEvent,
    ResponseDone,
    ToolCall,
    UserTranscript,
)
from getpatter.engines.openai_realtime import OpenAIRealtime, OpenAIRealtimeSession, realtime_url
from getpatter.errors import (
    AuthenticationError,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from tests.fakes.openai_realtime import Connection, FakeOpenAIRealtime, Reply, encode, tone
from tests.fakes.server import Running, running

KEY = "sk-test"
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def serve() -> Callable[[FakeOpenAIRealtime], Any]:
    return lambda fake: running(fake.app)


def engine(srv: Running, **kw: Any) -> OpenAIRealtime:
    return OpenAIRealtime(api_key=kw.pop("api_key", KEY), base_url=srv.http_url + "/v1", **kw)


async def until(session: OpenAIRealtimeSession, done: Callable[[EngineEvent], bool]) -> list[EngineEvent]:
    """Collect events up to and including the first one for which ``done`` is true."""

    async def go() -> list[EngineEvent]:
        out: list[EngineEvent] = []
        async for ev in session:
            out.append(ev)
            if done(ev):
                return out
        raise AssertionError(f"session ended early: {out}")

    return await asyncio.wait_for(go(), 5)


def is_done(ev: EngineEvent) -> bool:
    return isinstance(ev, ResponseDone)


def audio_count(n: int) -> Callable[[EngineEvent], bool]:
    """A ``done`` predicate that is true at the ``n``-th AudioOut."""
    seen = [0]

    def done(ev: EngineEvent) -> bool:
        seen[0] += isinstance(ev, AudioOut)
        return seen[0] >= n

    return done


def only(conn: Connection, kind: str) -> dict[str, Any]:
    events = conn.events_of(kind)
    assert len(events) == 1, events
    return events[0]


async def stream_audio(session: OpenAIRealtimeSession, audio: bytes, frame: int) -> None:
    for i in range(0, len(audio), frame):
        await session.send_audio(audio[i : i + frame])


# -- configuration ---------------------------------------------------------------------------------------


def test_url_derivation() -> None:
    m = "gpt-realtime"
    assert (
        realtime_url("https://api.openai.com/v1", None, m)
        == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    )
    assert (
        realtime_url("http://127.0.0.1:8765/v1/", None, m)
        == "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"
    )
    assert (
        realtime_url("x", "wss://proxy.example/openai", m)
        == "wss://proxy.example/openai/realtime?model=gpt-realtime"
    )
    with pytest.raises(PatterConfigError):
        realtime_url("not a url", None, m)


def test_missing_key_names_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="OPENAI_API_KEY") as info:
        OpenAIRealtime()
    assert "api_key" in str(info.value)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123")
    eng = OpenAIRealtime()
    assert "sk-from-env" not in repr(eng)
    assert eng.provider_mode == "openai_realtime" and eng.model == "gpt-4o-mini-realtime-preview"
    assert ns.Realtime is OpenAIRealtime


# -- handshake ------------------------------------------------------------------------------------------


async def test_handshake_mulaw_carrier_session_update_field_by_field(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY)
    async with serve(fake) as srv:
        eng = engine(srv, voice="marin", noise_reduction="near_field")
        cfg = EngineConfig(instructions="Be brief.", tools=(WEATHER,), carrier_format=MULAW_8K, language="it")
        session = await eng.connect(cfg)
        assert session.input_format == MULAW_8K and session.output_format == MULAW_8K
        await session.close()
        await session.close()  # idempotent
    conn = fake.connections[0]
    assert conn.query == {"model": "gpt-4o-mini-realtime-preview"}
    assert conn.headers["authorization"] == f"Bearer {KEY}"
    assert "openai-beta" not in conn.headers
    update = only(conn, "session.update")
    assert set(update) == {"type", "event_id", "session"}
    s = update["session"]
    assert s["type"] == "realtime"
    assert s["instructions"] == "Be brief."
    assert s["output_modalities"] == ["audio"]
    assert s["tool_choice"] == "auto"
    assert s["tools"] == [{"type": "function", **WEATHER}]
    assert "temperature" not in s
    assert s["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "marin"}
    assert s["audio"]["input"] == {
        "format": {"type": "audio/pcmu"},
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 300,
            "create_response": True,
            "interrupt_response": True,
        },
        "transcription": {"model": "whisper-1", "language": "it"},
        "noise_reduction": {"type": "near_field"},
    }
    # the fake applied it: effective session is mu-law both ways
    assert conn.sent_of("session.updated")[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert conn.close_code == 1000


@pytest.mark.parametrize("carrier", [None, PCM16_16K])
async def test_handshake_pcm16_otherwise(serve: Any, carrier: Any) -> None:
    fake = FakeOpenAIRealtime(KEY)
    async with serve(fake) as srv:
        session = await engine(srv, model="gpt-realtime").connect(
            EngineConfig(instructions="x", carrier_format=carrier)
        )
        assert session.input_format == PCM16_24K and session.output_format == PCM16_24K
        await session.close()
    conn = fake.connections[0]
    assert conn.query["model"] == "gpt-realtime"
    audio = only(conn, "session.update")["session"]["audio"]
    pcm = {"type": "audio/pcm", "rate": 24000}
    assert audio["input"]["format"] == pcm and audio["output"]["format"] == pcm
    assert audio["output"]["voice"] == "alloy" and audio["input"]["turn_detection"]["type"] == "server_vad"
    assert "noise_reduction" not in audio["input"]


async def test_session_update_rejected_raises_provider_error(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY)
    async with serve(fake) as srv:
        with pytest.raises(PatterError, match="fable") as info:
            # allow_unlisted_voice: get past our own check to the vendor's refusal
            await engine(srv, voice="fable", allow_unlisted_voice=True).connect(
                EngineConfig(instructions="x")
            )
    assert not isinstance(info.value, PatterConnectionError)
    assert fake.connections[0].sent_of("error")[0]["error"]["event_id"] == "patter_setup"


async def test_auth_failure_and_rate_limit(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY)
    async with serve(fake) as srv:
        with pytest.raises(AuthenticationError, match="401") as info:
            await engine(srv, api_key="sk-wrong-secret-key").connect(EngineConfig(instructions="x"))
    assert "sk-wrong-secret-key" not in str(info.value)
    assert fake.refusals == [(401, "Incorrect API key provided: sk-****ey.")]
    limited = FakeOpenAIRealtime(KEY, reject_status=429, retry_after=7)
    async with serve(limited) as srv:
        with pytest.raises(RateLimitError) as rate:
            await engine(srv).connect(EngineConfig(instructions="x"))
    assert rate.value.retry_after == 7.0


async def test_fake_refuses_beta_header(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY)
    async with serve(fake) as srv:
        url = f"{srv.ws_url}/v1/realtime?model=gpt-realtime"
        headers = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "realtime=v1"}
        async with connect(url, additional_headers=headers) as ws:
            await ws.wait_closed()
            assert (ws.close_code, ws.close_reason) == (4000, "beta_api_shape_disabled")


# -- conversation ---------------------------------------------------------------------------------------


async def test_audio_in_vad_transcripts_audio_out_and_usage(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY, script=["It is sunny in Rome today."], utterances=["weather in Rome?"])
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x", carrier_format=MULAW_8K))
        pcm = (
            bytes(2 * 4000) + tone(600, 8000) + bytes(2 * 4000)
        )  # 500 ms silence, 600 ms voice, 500 ms silence
        await stream_audio(session, encode(pcm, "audio/pcmu"), 160)
        events = await until(session, is_done)
        await session.close()
    conn = fake.connections[0]
    sent_audio = b"".join(base64.b64decode(e["audio"]) for e in conn.events_of("input_audio_buffer.append"))
    assert sent_audio == encode(pcm, "audio/pcmu") and conn.audio == sent_audio
    assert all(set(e) == {"type", "audio"} for e in conn.events_of("input_audio_buffer.append"))
    # VAD timing in audio time: onset 500 ms minus 300 ms prefix; end = 1100 ms + 300 ms silence
    assert events[0] == CallerSpeechStarted(200)
    assert events[1] == CallerSpeechStopped(1400)
    assert (
        UserTranscript("weather in Rome?", conn.sent_of("input_audio_buffer.committed")[0]["item_id"])
        in events
    )
    audio_out = [e for e in events if isinstance(e, AudioOut)]
    item_id = audio_out[0].item_id
    assert len(audio_out) > 1 and {a.item_id for a in audio_out} == {item_id}
    assert sum(len(a.audio) for a in audio_out) == len("It is sunny in Rome today.") * 20 * 8  # mu-law 8 kHz
    deltas = [e.text for e in events if isinstance(e, AgentTranscript) and not e.final]
    assert "".join(deltas) == "It is sunny in Rome today."
    assert AgentTranscript("It is sunny in Rome today.", item_id, final=True) in events
    done = events[-1]
    assert isinstance(done, ResponseDone) and done.status == "completed"
    assert done.response_id == conn.sent_of("response.done")[0]["response"]["id"]
    assert done.usage["output_token_details"]["audio_tokens"] > 0
    assert set(done.usage["input_token_details"]) >= {"text_tokens", "audio_tokens", "cached_tokens"}
    assert done.usage == conn.sent_of("response.done")[0]["response"]["usage"]


async def test_say_first_message(serve: Any) -> None:
    greeting = "Hello! Thanks for calling Acme, how can I help?"
    fake = FakeOpenAIRealtime(KEY, script=[greeting])
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x", first_message=greeting))
        await session.say(greeting)
        events = await until(session, is_done)
        await session.close()
    create = only(fake.connections[0], "response.create")
    assert set(create) == {"type", "event_id", "response"}
    assert create["response"]["tool_choice"] == "none"
    assert create["response"]["instructions"].endswith("\n\n" + greeting)
    assert "exactly" in create["response"]["instructions"]
    finals = [e.text for e in events if isinstance(e, AgentTranscript) and e.final]
    assert finals == [greeting]
    audio = b"".join(e.audio for e in events if isinstance(e, AudioOut))
    assert len(audio) == len(greeting) * 20 * 48  # pcm16 24 kHz: 48 bytes a ms


async def test_function_call_round_trip(serve: Any) -> None:
    script = [Reply(tool="get_weather", arguments={"city": "Rome"}), Reply(text="Sunny, 21 degrees.")]
    fake = FakeOpenAIRealtime(KEY, script=script)
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x", tools=(WEATHER,)))
        await session.send_user_text("What's the weather in Rome?")
        first = await until(session, is_done)
        calls = [e for e in first if isinstance(e, ToolCall)]
        assert len(calls) == 1  # announced once although three events carry it
        call = calls[0]
        assert call.name == "get_weather" and orjson.loads(call.arguments) == {"city": "Rome"}
        await session.send_tool_result(call.call_id, '{"temp": 21}')
        second = await until(session, is_done)
        await session.close()
    finals = [e for e in second if isinstance(e, AgentTranscript) and e.final]
    assert [e.text for e in finals] == ["Sunny, 21 degrees."]
    assert [e for e in second if isinstance(e, ToolCall)] == []
    conn = fake.connections[0]
    creates = conn.events_of("conversation.item.create")
    assert creates[1]["item"] == {
        "type": "function_call_output",
        "call_id": call.call_id,
        "output": '{"temp": 21}',
    }
    kinds = [e["type"] for e in conn.control_events]
    assert kinds == ["session.update"] + ["conversation.item.create", "response.create"] * 2
    assert not conn.sent_of("error")


async def test_user_text_injection(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY, script=["You pressed five."])
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x"))
        await session.send_user_text("[DTMF: 5]")
        events = await until(session, is_done)
        await session.close()
    conn = fake.connections[0]
    create = only(conn, "conversation.item.create")
    assert create["item"] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "[DTMF: 5]"}],
    }
    assert set(only(conn, "response.create")) == {"type", "event_id"}
    assert conn.sent_of("conversation.item.added")[0]["item"]["content"][0]["text"] == "[DTMF: 5]"
    assert isinstance(events[-1], ResponseDone)


async def test_interrupt_sends_cancel_then_truncate(serve: Any) -> None:
    fake = FakeOpenAIRealtime(
        KEY, script=["A long answer that the caller will not hear to the end."], stall_after_chunks=3
    )
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x", carrier_format=MULAW_8K))
        await session.send_user_text("tell me a story")
        heard = await until(session, audio_count(3))
        item_id = next(e.item_id for e in heard if isinstance(e, AudioOut))
        await session.interrupt(item_id, 170)
        rest = await until(session, is_done)
        # a second barge-in on the same item: nothing to cancel, and the truncate is clamped to what the
        # item still holds (170 ms), never the 10 s asked for
        await session.interrupt(item_id, 10_000)
        errors = await until(session, lambda e: isinstance(e, EngineError))
        await session.close()
    conn = fake.connections[0]
    cancel, truncate = conn.control_events[3:5]
    assert set(cancel) == {"type", "event_id"} and cancel["type"] == "response.cancel"
    assert {k: v for k, v in truncate.items() if k != "event_id"} == {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 170,
    }
    done = rest[-1]
    assert isinstance(done, ResponseDone) and done.status == "cancelled" and done.usage["output_tokens"] > 0
    assert conn.sent_of("response.done")[0]["response"]["status_details"]["reason"] == "client_cancelled"
    assert not [e for e in rest if isinstance(e, AudioOut)]  # nothing after the cancel
    error = errors[-1]
    assert isinstance(error, EngineError) and error.fatal is False
    assert "response_cancel_not_active" in error.message and "response.cancel" in error.message
    assert [e["type"] for e in conn.control_events[5:]] == ["response.cancel", "conversation.item.truncate"]
    assert [e["audio_end_ms"] for e in conn.sent_of("conversation.item.truncated")] == [170, 170]


async def test_socket_drop_raises_connection_error(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY, script=["This reply is cut off."], drop_after_events=6)
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x"))
        await session.send_user_text("hi")
        with pytest.raises(PatterConnectionError, match="1011"):
            await until(session, is_done)
        with pytest.raises(StopAsyncIteration):
            await session.__anext__()
        with pytest.raises(PatterConnectionError):
            await session.send_audio(b"\x00" * 960)
        await session.close()


async def test_beta_event_names_accepted(serve: Any) -> None:
    script = [Reply(text="Checking.", tool="get_weather", arguments={"city": "Oslo"})]
    fake = FakeOpenAIRealtime(KEY, script=script, beta_events=True)
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x", tools=(WEATHER,)))
        await session.send_user_text("weather in Oslo")
        events = await until(session, is_done)
        await session.close()
    sent = {e["type"] for e in fake.connections[0].sent}
    assert {"response.audio.delta", "response.audio_transcript.done", "conversation.item.created"} <= sent
    assert "response.output_audio.delta" not in sent
    assert sum(len(e.audio) for e in events if isinstance(e, AudioOut)) == len("Checking.") * 20 * 48
    item_id = next(e.item_id for e in events if isinstance(e, AudioOut))
    assert AgentTranscript("Checking.", item_id, final=True) in events
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]


async def test_iteration_ends_cleanly_after_close(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY)
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x"))

        async def drain() -> list[EngineEvent]:
            return [e async for e in session]

        task = asyncio.create_task(drain())
        await session.close()
        assert await asyncio.wait_for(task, 3) == []
        await session.send_audio(b"\x00" * 960)  # a no-op after close


async def test_server_vad_barge_in_cancels_response_pcm16(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY, script=["A long reply nobody waits for.", "Sure."], stall_after_chunks=2)
    fake.utterances = ["stop, wait"]
    async with serve(fake) as srv:
        session = await engine(srv).connect(EngineConfig(instructions="x"))
        await session.send_user_text("talk")
        await until(session, audio_count(2))
        await stream_audio(session, tone(400, 24000) + bytes(2 * 24 * 400), 960)  # voice, then silence
        events = await until(session, lambda e: isinstance(e, UserTranscript))
        await session.close()
    assert events[0] == CallerSpeechStarted(0)
    cancelled = events[1]
    assert isinstance(cancelled, ResponseDone) and cancelled.status == "cancelled"
    assert events[2] == CallerSpeechStopped(700)  # 400 ms voice + 300 ms silence
    assert isinstance(events[-1], UserTranscript) and events[-1].text == "stop, wait"
    first_done = fake.connections[0].sent_of("response.done")[0]["response"]
    assert first_done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}


def test_error_mapping_fatal_only_for_session_level() -> None:
    mapper = EventMapper(PCM16_24K)
    mapper.remember_sent("patter_7", "response.cancel")
    benign = {"type": "invalid_request_error", "code": "response_cancel_not_active", "event_id": "patter_7"}
    quota = {
        "type": "insufficient_quota",
        "code": "insufficient_quota",
        "message": "You exceeded your quota.",
    }
    [first] = mapper.handle({"type": "error", "error": {**benign, "message": "Cancellation failed"}})
    [second] = mapper.handle({"type": "error", "error": quota})
    assert first == EngineError(
        "OpenAI Realtime response_cancel_not_active (on response.cancel): Cancellation failed", fatal=False
    )
    assert isinstance(second, EngineError) and second.fatal is True
    assert mapper.handle({"type": "rate_limits.updated", "rate_limits": []}) == []


async def test_fake_rejects_malformed_and_beta_shaped_events(serve: Any) -> None:
    fake = FakeOpenAIRealtime(KEY)
    async with serve(fake) as srv:
        url = f"{srv.ws_url}/v1/realtime?model=gpt-realtime"
        async with connect(url, additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
            assert orjson.loads(await ws.recv())["type"] == "session.created"
            bad = [
                {"type": "session.update", "session": {"modalities": ["audio"], "voice": "alloy"}},
                {"type": "session.update", "session": {"type": "realtime", "temperature": 0.8}},
                {"type": "input_audio_buffer.flush"},
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": "x"},
                },
                {"type": "response.cancel"},
            ]
            codes = []
            for event in bad:
                await ws.send(orjson.dumps(event).decode())
                reply = orjson.loads(await ws.recv())
                assert reply["type"] == "error"
                codes.append(reply["error"]["code"])
    assert codes == [
        "missing_required_parameter",
        "unknown_parameter",
        "invalid_value",
        "invalid_type",
        "response_cancel_not_active",
    ]


def test_voice_is_checked_against_the_documented_voices_with_escape_hatches() -> None:
    from getpatter import Patter, PatterConfigError
    from getpatter.engines.base import VOICES

    assert OpenAIRealtime(api_key="sk-x", voice="marin").voice == "marin"
    assert OpenAIRealtime(api_key="sk-x", voice="voice_abc123").voice == "voice_abc123"  # a custom voice
    with pytest.raises(PatterConfigError, match="'nova' is not an OpenAI Realtime voice") as info:
        OpenAIRealtime(api_key="sk-x", voice="nova")
    assert all(v in str(info.value) for v in VOICES) and "allow_unlisted_voice=True" in str(info.value)
    assert OpenAIRealtime(api_key="sk-x", voice="aurora", allow_unlisted_voice=True).voice == "aurora"
    phone = Patter()
    with pytest.raises(PatterConfigError, match="voice='Rachel'"):
        phone.agent("x", engine=OpenAIRealtime(api_key="sk-x"), voice="Rachel")
    lenient = OpenAIRealtime(api_key="sk-x", allow_unlisted_voice=True)
    assert phone.agent("x", engine=lenient, voice="aurora").voice == "aurora"
