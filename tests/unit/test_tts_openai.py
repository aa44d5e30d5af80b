"""OpenAITTS against the strict fake ``/v1/audio/speech`` (protocols/openai-rest.md §3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from getpatter.audio.format import PCM16_24K
from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.tts import openai as openai_mod
from getpatter.tts.openai import VOICES, OpenAITTS, split_text
from tests.fakes.openai_audio import FakeOpenAIAudio, tone
from tests.fakes.server import running
from tests.unit._tts_stream import cancel_mid_stream

KEY = "sk-test-secret-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeOpenAIAudio, str]]:
    f = FakeOpenAIAudio(api_key=KEY)
    async with running(f.app) as srv:
        yield f, srv.http_url + "/v1"


async def collect(tts: OpenAITTS, text: str) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(text)]


def expected_pcm24_bytes(text: str, ms_per_char: float = 40.0) -> int:
    return int(24000 * len(text) * ms_per_char / 1000) * 2


async def test_request_matches_protocol_field_by_field(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    tts = OpenAITTS(api_key=KEY, base_url=base)
    await collect(tts, "Hello there.")
    await tts.close()
    (req,) = f.requests
    assert req.method == "POST"
    assert req.path == "/v1/audio/speech"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"].startswith("application/json")
    assert req.body == {"model": "tts-1", "input": "Hello there.", "voice": "alloy", "response_format": "pcm"}
    assert f.texts == ["Hello there."]


async def test_optional_fields_sent_only_when_set(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    tts = OpenAITTS(KEY, "coral", "gpt-4o-mini-tts", base_url=base + "/", speed=1.25, instructions="Be warm.")
    await collect(tts, "Hi")
    await tts.close()
    assert f.requests[0].path == "/v1/audio/speech"  # trailing slash in base_url joined with one "/"
    assert f.requests[0].body == {
        "model": "gpt-4o-mini-tts",
        "input": "Hi",
        "voice": "coral",
        "response_format": "pcm",
        "speed": 1.25,
        "instructions": "Be warm.",
    }


async def test_audio_is_24k_pcm16_with_length_proportional_to_text(fake: tuple[FakeOpenAIAudio, str]) -> None:
    _, base = fake
    tts = OpenAITTS(api_key=KEY, base_url=base)
    assert tts.audio_format == PCM16_24K
    short, long = "Hi there", "Hi there, this is a much longer sentence."
    short_chunks = await collect(tts, short)
    long_chunks = await collect(tts, long)
    await tts.close()
    # The fake cuts the body at odd offsets (first chunk 1 byte); the client re-frames to whole samples.
    assert all(len(c) % 2 == 0 and c for c in short_chunks + long_chunks)
    short_audio, long_audio = b"".join(short_chunks), b"".join(long_chunks)
    assert len(short_audio) == expected_pcm24_bytes(short)
    assert len(long_audio) == expected_pcm24_bytes(long)
    assert long_audio == tone("pcm16", 24000, len(long) * 40.0)
    assert len(long_audio) / len(short_audio) == pytest.approx(len(long) / len(short), rel=0.01)


async def test_first_byte_delay_and_ms_per_char_knobs(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    f.first_byte_delay_s, f.ms_per_char = 0.05, 10.0
    tts = OpenAITTS(api_key=KEY, base_url=base)
    audio = b"".join(await collect(tts, "abcd"))
    await tts.close()
    assert len(audio) == expected_pcm24_bytes("abcd", 10.0)


def test_provider_id_model_and_alias() -> None:
    assert OpenAITTS(api_key=KEY).provider_id == "openai_tts"
    hd = OpenAITTS(api_key=KEY, model="tts-1-hd")
    assert (hd.provider_id, hd.model) == ("openai_tts_hd", "tts-1-hd")
    assert openai_mod.TTS is OpenAITTS


def test_invalid_voice_lists_valid_ones() -> None:
    with pytest.raises(PatterConfigError) as info:
        OpenAITTS(api_key=KEY, voice="rachel")
    assert "'rachel'" in str(info.value)
    for voice in VOICES:
        assert voice in str(info.value)


def test_config_validation() -> None:
    with pytest.raises(PatterConfigError, match="speed"):
        OpenAITTS(api_key=KEY, speed=5.0)
    with pytest.raises(PatterConfigError, match="instructions"):
        OpenAITTS(api_key=KEY, model="tts-1", instructions="whisper")
    with pytest.raises(PatterConfigError, match="base_url"):
        OpenAITTS(api_key=KEY, base_url="api.openai.com/v1")


def test_missing_key_names_param_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PatterConfigError) as info:
        OpenAITTS()
    assert "api_key" in str(info.value) and "OPENAI_API_KEY" in str(info.value)


async def test_key_from_env(fake: tuple[FakeOpenAIAudio, str], monkeypatch: pytest.MonkeyPatch) -> None:
    f, base = fake
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    tts = OpenAITTS(base_url=base)
    assert KEY not in repr(tts)
    assert b"".join(await collect(tts, "ok"))
    await tts.close()
    assert f.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_wrong_key_is_authentication_error_without_leaking_key(
    fake: tuple[FakeOpenAIAudio, str],
) -> None:
    _, base = fake
    wrong = "sk-wrong-key-abcdef123456"
    tts = OpenAITTS(api_key=wrong, base_url=base)
    with pytest.raises(AuthenticationError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert "Incorrect API key provided" in str(info.value)  # the vendor's message survives...
    assert wrong not in str(info.value)  # ...but the fake echoes the key, and we redact it
    assert info.value.code == ErrorCode.AUTH


async def test_429_is_rate_limit_with_retry_after(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    f.status, f.retry_after = 429, "7"
    tts = OpenAITTS(api_key=KEY, base_url=base)
    with pytest.raises(RateLimitError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert info.value.retry_after == 7.0
    assert "HTTP 429" in str(info.value)


async def test_500_is_connection_error(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    f.status = 500
    tts = OpenAITTS(api_key=KEY, base_url=base)
    with pytest.raises(PatterConnectionError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert not isinstance(info.value, RateLimitError)
    assert "fake fault 500" in str(info.value)


async def test_rejected_request_is_provider_error_with_vendor_message(
    fake: tuple[FakeOpenAIAudio, str],
) -> None:
    _, base = fake
    tts = OpenAITTS(api_key=KEY, model="tts-9", base_url=base)
    with pytest.raises(PatterError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert info.value.code == ErrorCode.PROVIDER_ERROR
    assert "Invalid value for 'model'" in str(info.value)


async def test_stall_mid_stream_times_out_as_connection_error(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    f.stall_after_bytes = 2000
    tts = OpenAITTS(api_key=KEY, base_url=base, timeout=0.2)
    got: list[bytes] = []
    with pytest.raises(PatterConnectionError, match="timed out"):
        async for chunk in tts.synthesize("Hello there, stalled friend."):
            got.append(chunk)
    await tts.close()
    assert 0 < len(b"".join(got)) < expected_pcm24_bytes("Hello there, stalled friend.")


async def test_dropped_connection_is_connection_error(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    f.drop_after_bytes = 2000
    tts = OpenAITTS(api_key=KEY, base_url=base)
    with pytest.raises(PatterConnectionError):
        await collect(tts, "Hello there, dropped friend.")
    await tts.close()


async def test_unreachable_server_is_connection_error() -> None:
    async with running(FakeOpenAIAudio().app) as srv:
        base = srv.http_url + "/v1"
    tts = OpenAITTS(api_key=KEY, base_url=base)  # server is gone: connection refused
    with pytest.raises(PatterConnectionError, match="connection failed"):
        await collect(tts, "Hello")
    await tts.close()


async def test_connection_reused_across_calls(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    tts = OpenAITTS(api_key=KEY, base_url=base)
    await collect(tts, "first")
    await collect(tts, "second")
    ports = f.client_ports
    assert len(ports) == 2 and ports[0] == ports[1]
    await tts.close()
    await collect(tts, "after close")  # reopens transparently
    await tts.close()
    assert f.texts == ["first", "second", "after close"]


async def test_cancelling_consumer_closes_http_stream(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    tts = OpenAITTS(api_key=KEY, base_url=base)
    assert await cancel_mid_stream(tts, f) == (1, 0)  # aborted once, never read to its end
    await tts.close()


async def test_aclose_of_generator_closes_http_stream(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    f.stall_after_bytes = 3000
    tts = OpenAITTS(api_key=KEY, base_url=base)
    gen = tts.synthesize("A sentence long enough to stall midway.")
    assert await anext(gen)
    await gen.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(f.aborted_event.wait(), 5)
    assert f.aborted == 1
    await tts.close()


async def test_text_over_4096_chars_is_split_into_requests(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    f.ms_per_char = 1.0
    text = " ".join(["word"] * 1500)  # 7499 chars
    tts = OpenAITTS(api_key=KEY, base_url=base)
    audio = b"".join(await collect(tts, text))
    await tts.close()
    assert len(f.texts) == 2 and all(len(t) <= 4096 for t in f.texts)
    assert " ".join(f.texts) == text
    assert len(audio) == sum(expected_pcm24_bytes(t, 1.0) for t in f.texts)


async def test_blank_text_sends_nothing(fake: tuple[FakeOpenAIAudio, str]) -> None:
    f, base = fake
    tts = OpenAITTS(api_key=KEY, base_url=base)
    assert await collect(tts, "  ") == []
    await tts.close()
    assert f.requests == []


def test_split_text_keeps_words_whole() -> None:
    assert split_text("aaa bbb ccc", limit=7) == ["aaa bbb", "ccc"]
    assert split_text("abcdefghij", limit=4) == ["abcd", "efgh", "ij"]
    assert split_text("") == []


async def test_fake_is_strict(fake: tuple[FakeOpenAIAudio, str]) -> None:
    """The fake refuses what the API refuses, so a sloppy client cannot pass."""
    _, base = fake
    ok = {"model": "tts-1", "input": "hi", "voice": "alloy", "response_format": "pcm"}
    auth = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient() as client:
        url = base + "/audio/speech"
        assert (await client.post(url, json=ok, headers=auth)).status_code == 200
        assert (await client.post(url, json=ok, headers={"x-api-key": KEY})).status_code == 401
        assert (await client.post(url, json={**ok, "voice": "bob"}, headers=auth)).status_code == 400
        assert (await client.post(url, json={**ok, "extra": 1}, headers=auth)).status_code == 400
        assert (await client.post(url, json={**ok, "input": ""}, headers=auth)).status_code == 400
        without_format = {k: v for k, v in ok.items() if k != "response_format"}
        assert (await client.post(url, json=without_format, headers=auth)).status_code == 400
        assert (await client.post(url, json={**ok, "speed": 9}, headers=auth)).status_code == 400
