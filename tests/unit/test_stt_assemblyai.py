"""AssemblyAISTT against the strict fake Universal Streaming v3 server (real WebSocket on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.stt import assemblyai
from getpatter.stt.assemblyai import AssemblyAISTT
from getpatter.stt.base import SpeechStarted, STTEvent, Transcript
from tests.fakes._segmenter import encode, silence, tone
from tests.fakes.assemblyai import FakeAssemblyAI
from tests.unit._stt_stream import drain, feed, finals, serve

KEY = "aai-test-key"


async def consume(stream: Any) -> list[STTEvent]:
    events: list[STTEvent] = []
    async with asyncio.timeout(5):
        async for ev in stream:
            events.append(ev)
    return events


# -- configuration -------------------------------------------------------------------------------------


def test_missing_key_and_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ASSEMBLYAI_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="ASSEMBLYAI_API_KEY") as info:
        AssemblyAISTT()
    assert "api_key" in str(info.value)
    for kwargs, name in [
        ({"encoding": "opus"}, "encoding"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"end_of_turn_confidence_threshold": 2.0}, "end_of_turn_confidence_threshold"),
        ({"max_turn_silence": -1}, "max_turn_silence"),
        ({"base_url": "ftp://x"}, "base_url"),
    ]:
        with pytest.raises(PatterConfigError, match=name):
            AssemblyAISTT(KEY, **kwargs)


def test_defaults_twilio_and_model_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", "aai-secret-env")
    stt = AssemblyAISTT()
    assert (stt.provider_id, stt.model, stt.input_format) == (
        "assemblyai",
        "universal-streaming-english",
        PCM16_16K,
    )
    assert stt.url == "wss://streaming.assemblyai.com/v3/ws" and "aai-secret" not in repr(stt)
    assert AssemblyAISTT(KEY, language="es").model == "universal-streaming-multilingual"
    twilio = AssemblyAISTT.for_twilio(KEY)
    assert (twilio.input_format, twilio.encoding, twilio.sample_rate) == (MULAW_8K, "pcm_mulaw", 8000)
    assert AssemblyAISTT(KEY, base_url="https://eu.example/x/").url == "wss://eu.example/x/v3/ws"
    assert assemblyai.STT is AssemblyAISTT


# -- handshake -----------------------------------------------------------------------------------------


async def test_handshake_query_header_and_terminate() -> None:
    fake = FakeAssemblyAI(KEY)
    async with serve(fake) as url:
        stream = await AssemblyAISTT(KEY, base_url=url).open()
        assert await drain(stream) == []
        assert stream.session_id and stream.vendor_audio_seconds == 0.0
    (conn,) = fake.connections
    assert conn.query_items == [
        ("sample_rate", "16000"),
        ("encoding", "pcm_s16le"),
        ("speech_model", "universal-streaming-english"),
        ("format_turns", "false"),
    ]
    assert conn.headers["authorization"] == KEY  # raw key, no scheme word
    assert conn.controls == [{"type": "Terminate"}]
    assert [m["type"] for m in conn.sent] == ["Begin", "Termination"] and conn.close_code == 1000


async def test_optional_turn_knobs_are_sent() -> None:
    fake = FakeAssemblyAI(KEY)
    async with serve(fake) as url:
        stt = AssemblyAISTT(
            KEY,
            base_url=url.replace("http://", "ws://"),
            end_of_turn_confidence_threshold=0.5,
            min_end_of_turn_silence_when_confident=300,
            max_turn_silence=1500,
            keyterms_prompt=["Acme", "Zed's"],
            format_turns=True,
        )
        await (await stt.open()).close()
    q = fake.connections[0].query
    assert q["end_of_turn_confidence_threshold"] == "0.5"
    assert (q["min_end_of_turn_silence_when_confident"], q["max_turn_silence"]) == ("300", "1500")
    assert q["keyterms_prompt"] == '["Acme","Zed\'s"]' and q["format_turns"] == "true"


async def test_auth_failures_on_upgrade_and_as_close_code() -> None:
    fake = FakeAssemblyAI(KEY)
    async with serve(fake) as url:
        with pytest.raises(AuthenticationError) as info:
            await AssemblyAISTT("aai-wrong-secret", base_url=url).open()
        assert "401" in str(info.value) and "aai-wrong-secret" not in str(info.value)
        fake.auth_failure = "close"
        stream = await AssemblyAISTT("aai-wrong-secret", base_url=url).open()
        with pytest.raises(AuthenticationError, match="1008"):
            await consume(stream)
        await stream.close()


async def test_rate_limit_and_server_error_on_handshake() -> None:
    fake = FakeAssemblyAI(KEY, reject_status=429, retry_after=2)
    async with serve(fake) as url:
        with pytest.raises(RateLimitError) as info:
            await AssemblyAISTT(KEY, base_url=url).open()
        assert info.value.retry_after == 2.0
        fake.reject_status = 503
        with pytest.raises(PatterConnectionError, match="503"):
            await AssemblyAISTT(KEY, base_url=url).open()


# -- transcripts ---------------------------------------------------------------------------------------


async def test_turns_give_interims_from_words_and_one_final_each() -> None:
    fake = FakeAssemblyAI(KEY, ["hi my name is Ann", "bye now"])
    audio = silence(200) + tone(500) + silence(500) + tone(300) + silence(500)
    async with serve(fake) as url:
        stream = await AssemblyAISTT(KEY, base_url=url).open()
        await feed(stream, audio)
        assert stream.audio_seconds == pytest.approx(2.0)
        events = await drain(stream)
    assert finals(events) == [
        Transcript("hi my name is ann", True, True, 0.9),
        Transcript("bye now", True, True, 0.9),
    ]
    interims = [e.text for e in events if isinstance(e, Transcript) and not e.is_final]
    assert interims[:3] == ["hi", "hi my", "hi my name"]  # in-progress words included
    conn = fake.connections[0]
    assert bytes(conn.audio[: len(audio)]) == audio
    assert not any(conn.audio[len(audio) :])  # only silence padding of the last (< 50 ms) frame follows
    assert all(50 <= ms <= 1000 for ms in conn.frame_ms)
    assert [t["turn_order"] for t in conn.sent_of("Turn") if t["end_of_turn"]] == [0, 1]


async def test_format_turns_uses_the_formatted_copy_as_the_final() -> None:
    fake = FakeAssemblyAI(KEY, ["Hello, Dr. Smith!"])
    async with serve(fake) as url:
        stream = await AssemblyAISTT(KEY, base_url=url, format_turns=True, model="u3-rt-pro").open()
        await feed(stream, tone(400) + silence(500))
        events = await drain(stream)
    assert finals(events) == [Transcript("Hello, Dr. Smith!", True, True, 0.9)]
    assert events[0] == SpeechStarted()
    ends = [t for t in fake.connections[0].sent_of("Turn") if t["end_of_turn"]]
    assert [t["turn_is_formatted"] for t in ends] == [False, True]


async def test_twilio_mulaw_passes_through() -> None:
    fake = FakeAssemblyAI(KEY, ["press one"])
    audio = encode("mulaw", tone(400, 8000) + silence(500, 8000))
    async with serve(fake) as url:
        stream = await AssemblyAISTT.for_twilio(KEY, base_url=url).open()
        await feed(stream, audio, step=160)
        events = await drain(stream)
    conn = fake.connections[0]
    assert (conn.query["encoding"], conn.query["sample_rate"]) == ("pcm_mulaw", "8000")
    assert bytes(conn.audio[: len(audio)]) == audio and set(conn.audio[len(audio) :]) <= {0xFF}
    assert stream.audio_seconds == pytest.approx(0.9)
    assert finals(events) == [Transcript("press one", True, True, 0.9)]


async def test_finalize_forces_the_endpoint_and_pads_the_last_frame() -> None:
    fake = FakeAssemblyAI(KEY, ["stop right there"])
    async with serve(fake) as url:
        stream = await AssemblyAISTT(KEY, base_url=url).open()
        await feed(stream, tone(420), step=320)  # 10 ms pieces: 400 ms goes out, 20 ms stays buffered
        await stream.finalize()
        async with asyncio.timeout(5):
            async for ev in stream:
                if isinstance(ev, Transcript) and ev.is_final:
                    assert ev == Transcript("stop right there", True, True, 0.9)
                    break
        await drain(stream)
    conn = fake.connections[0]
    assert conn.controls == [{"type": "ForceEndpoint"}, {"type": "Terminate"}]
    assert conn.frame_ms[-1] == 50.0  # the 20 ms tail was padded to the 50 ms minimum
    assert stream.audio_seconds == pytest.approx(0.42)


async def test_big_chunks_are_cut_to_at_most_one_second() -> None:
    fake = FakeAssemblyAI(KEY)
    async with serve(fake) as url:
        stream = await AssemblyAISTT(KEY, base_url=url).open()
        await stream.send(silence(2500))
        await drain(stream)
    assert fake.connections[0].frame_ms == [1000.0, 1000.0, 500.0]


# -- failures ------------------------------------------------------------------------------------------


async def test_drop_raises_from_iterator_and_send() -> None:
    fake = FakeAssemblyAI(KEY, ["never"], drop_after_seconds=0.3)
    async with serve(fake) as url:
        stream = await AssemblyAISTT(KEY, base_url=url).open()
        await feed(stream, tone(400))
        with pytest.raises(PatterConnectionError, match="unexpectedly"):
            await consume(stream)
        with pytest.raises(PatterConnectionError):
            await stream.send(silence(100))
        await stream.close()
        await stream.close()


async def test_vendor_error_message_ends_the_stream() -> None:
    fake = FakeAssemblyAI(KEY, error_after_seconds=0.1)
    async with serve(fake) as url:
        stream = await AssemblyAISTT(KEY, base_url=url).open()
        with contextlib.suppress(PatterConnectionError):
            await feed(stream, silence(300))
        with pytest.raises(PatterConnectionError, match="Session Expired"):
            await consume(stream)
        await stream.close()
