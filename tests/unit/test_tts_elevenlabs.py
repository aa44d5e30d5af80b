"""ElevenLabsTTS (HTTP streaming) against the strict fake (protocols/tts.md §1.1)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator

import httpx
import pytest

from getpatter.audio.format import ALAW_8K, MULAW_8K, PCM16_16K, AudioFormat
from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.tts import elevenlabs as el_mod
from getpatter.tts.elevenlabs import ElevenLabsTTS, resolve_voice_id
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_audio import tone
from tests.fakes.server import running
from tests.unit._tts_stream import cancel_mid_stream

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

KEY = "el-secret-key-0123456789"
SARAH = "EXAVITQu4vr4xnSDxMaL"
RACHEL = "21m00Tcm4TlvDq8ikWAM"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeElevenLabs, str]]:
    f = FakeElevenLabs(api_key=KEY)
    async with running(f.app) as srv:
        yield f, srv.http_url


async def collect(tts: ElevenLabsTTS, text: str) -> list[bytes]:
    return [chunk async for chunk in tts.synthesize(text)]


def expected_bytes(fmt: AudioFormat, text: str, ms_per_char: float = 40.0) -> int:
    return int(fmt.sample_rate * len(text) * ms_per_char / 1000) * fmt.bytes_per_sample


async def test_request_matches_protocol_field_by_field(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    tts = ElevenLabsTTS(api_key=KEY, base_url=base)
    await collect(tts, "Hello there.")
    await tts.close()
    (req,) = f.requests
    assert req.method == "POST"
    assert req.path == f"/v1/text-to-speech/{SARAH}/stream"
    assert req.query == {"output_format": "pcm_16000"}  # format in the query, never the body
    assert req.headers["xi-api-key"] == KEY
    assert "authorization" not in req.headers
    assert req.headers["content-type"].startswith("application/json")
    assert req.body == {"text": "Hello there.", "model_id": "eleven_flash_v2_5"}
    assert f.texts == ["Hello there."]


async def test_optional_fields(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    settings = {"stability": 0.4, "similarity_boost": 0.8, "use_speaker_boost": True, "speed": 1.1}
    tts = ElevenLabsTTS(
        KEY,
        "Rachel",
        "eleven_turbo_v2_5",
        base_url=base + "/",
        output_format="pcm_24000",
        voice_settings=settings,
        language_code="it",
        optimize_streaming_latency=3,
    )
    await collect(tts, "Ciao")
    await tts.close()
    (req,) = f.requests
    assert req.path == f"/v1/text-to-speech/{RACHEL}/stream"
    assert req.query == {"output_format": "pcm_24000", "optimize_streaming_latency": "3"}
    assert req.body == {
        "text": "Ciao",
        "model_id": "eleven_turbo_v2_5",
        "voice_settings": settings,
        "language_code": "it",
    }


async def test_pcm16k_audio_length_proportional_to_text(fake: tuple[FakeElevenLabs, str]) -> None:
    _, base = fake
    tts = ElevenLabsTTS(api_key=KEY, base_url=base)
    assert tts.audio_format == PCM16_16K
    short, long = "Short one", "A considerably longer sentence than the first."
    short_chunks, long_chunks = await collect(tts, short), await collect(tts, long)
    await tts.close()
    assert all(c and len(c) % 2 == 0 for c in short_chunks + long_chunks)
    short_audio, long_audio = b"".join(short_chunks), b"".join(long_chunks)
    assert len(short_audio) == expected_bytes(PCM16_16K, short)
    assert long_audio == tone("pcm16", 16000, len(long) * 40.0)
    assert len(long_audio) / len(short_audio) == pytest.approx(len(long) / len(short), rel=0.01)


async def test_for_twilio_returns_mulaw_8k_untouched(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    tts = ElevenLabsTTS.for_twilio(api_key=KEY, base_url=base, voice_id="adam")
    assert tts.audio_format == MULAW_8K
    text = "Thanks for calling."
    audio = b"".join(await collect(tts, text))
    await tts.close()
    assert f.requests[0].query["output_format"] == "ulaw_8000"
    assert len(audio) == expected_bytes(MULAW_8K, text)
    # Bytes are G.711 µ-law of the tone: decoding them gives back a -12 dBFS-ish sine.
    pcm = audioop.ulaw2lin(audio, 2)
    assert 7000 < audioop.max(pcm, 2) < 9000
    assert audio == tone("mulaw", 8000, len(text) * 40.0)


async def test_for_telnyx_and_alaw(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    telnyx = ElevenLabsTTS.for_telnyx(api_key=KEY, base_url=base)
    alaw = ElevenLabsTTS(api_key=KEY, base_url=base, output_format="alaw_8000")
    assert telnyx.audio_format == PCM16_16K and alaw.audio_format == ALAW_8K
    pcm = b"".join(await collect(telnyx, "abc"))
    a = b"".join(await collect(alaw, "abc"))
    await telnyx.close()
    await alaw.close()
    assert [r.query["output_format"] for r in f.requests] == ["pcm_16000", "alaw_8000"]
    assert len(pcm) == expected_bytes(PCM16_16K, "abc") and a == tone("alaw", 8000, 120.0)


def test_output_format_mapping_and_rejection() -> None:
    assert ElevenLabsTTS(api_key=KEY, output_format="pcm_22050").audio_format == AudioFormat("pcm16", 22050)
    assert ElevenLabsTTS(api_key=KEY, output_format="pcm_8000").audio_format == AudioFormat("pcm16", 8000)
    assert ElevenLabsTTS(api_key=KEY, output_format="pcm_44100").audio_format.sample_rate == 44100
    with pytest.raises(PatterConfigError, match="mp3_44100_128"):
        ElevenLabsTTS(api_key=KEY, output_format="mp3_44100_128")
    with pytest.raises(PatterConfigError, match="output_format"):
        ElevenLabsTTS.for_twilio(api_key=KEY, output_format="pcm_16000")


def test_voice_names_resolve_case_insensitively() -> None:
    assert resolve_voice_id("rachel") == RACHEL
    assert resolve_voice_id("RACHEL") == RACHEL
    assert resolve_voice_id(" Sarah ") == SARAH
    assert resolve_voice_id("abcdefghij0123456789") == "abcdefghij0123456789"  # custom id kept
    assert ElevenLabsTTS(api_key=KEY, voice_id="Adam").voice_id == "pNInz6obpgDQGcFmaJgB"


async def test_unknown_name_is_sent_as_id_and_vendor_404_surfaces(fake: tuple[FakeElevenLabs, str]) -> None:
    _, base = fake
    tts = ElevenLabsTTS(api_key=KEY, voice_id="Gandalf", base_url=base)
    with pytest.raises(PatterError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert info.value.code == ErrorCode.PROVIDER_ERROR
    assert "voice_not_found" in str(info.value) and "Gandalf" in str(info.value)


def test_identity_and_config_validation() -> None:
    tts = ElevenLabsTTS(api_key=KEY)
    assert (tts.provider_id, tts.model, tts.model_id) == (
        "elevenlabs",
        "eleven_flash_v2_5",
        "eleven_flash_v2_5",
    )
    assert el_mod.TTS is ElevenLabsTTS
    assert KEY not in repr(tts)
    with pytest.raises(PatterConfigError, match="voice_settings"):
        ElevenLabsTTS(api_key=KEY, voice_settings={"loudness": 1.0})
    with pytest.raises(PatterConfigError, match="optimize_streaming_latency"):
        ElevenLabsTTS(api_key=KEY, optimize_streaming_latency=9)


def test_missing_key_names_param_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(PatterConfigError) as info:
        ElevenLabsTTS()
    assert "api_key" in str(info.value) and "ELEVENLABS_API_KEY" in str(info.value)


async def test_key_from_env(fake: tuple[FakeElevenLabs, str], monkeypatch: pytest.MonkeyPatch) -> None:
    f, base = fake
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    tts = ElevenLabsTTS(base_url=base)
    assert b"".join(await collect(tts, "ok"))
    await tts.close()
    assert f.requests[0].headers["xi-api-key"] == KEY


async def test_wrong_key_is_authentication_error(fake: tuple[FakeElevenLabs, str]) -> None:
    _, base = fake
    wrong = "el-wrong-key-999999"
    tts = ElevenLabsTTS(api_key=wrong, base_url=base)
    with pytest.raises(AuthenticationError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert "invalid_api_key" in str(info.value) and "Invalid API key" in str(info.value)
    assert wrong not in str(info.value)


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_faults(fake: tuple[FakeElevenLabs, str], status: int) -> None:
    f, base = fake
    f.status = status
    tts = ElevenLabsTTS(api_key=KEY, base_url=base)
    with pytest.raises(AuthenticationError):
        await collect(tts, "Hello")
    await tts.close()


async def test_429_is_rate_limit_with_retry_after(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    f.status, f.retry_after = 429, "2.5"
    tts = ElevenLabsTTS(api_key=KEY, base_url=base)
    with pytest.raises(RateLimitError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert info.value.retry_after == 2.5
    assert "too_many_concurrent_requests" in str(info.value)


async def test_500_is_connection_error(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    f.status = 500
    tts = ElevenLabsTTS(api_key=KEY, base_url=base)
    with pytest.raises(PatterConnectionError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert not isinstance(info.value, RateLimitError) and "HTTP 500" in str(info.value)


async def test_stall_times_out_and_drop_is_connection_error(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    f.stall_after_bytes = 1500
    tts = ElevenLabsTTS(api_key=KEY, base_url=base, timeout=0.2)
    with pytest.raises(PatterConnectionError, match="timed out"):
        await collect(tts, "This one stalls after a while.")
    f.stall_after_bytes, f.drop_after_bytes = None, 1500
    with pytest.raises(PatterConnectionError):
        await collect(tts, "This one drops after a while.")
    await tts.close()


async def test_connection_reused_across_calls(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    tts = ElevenLabsTTS.for_twilio(api_key=KEY, base_url=base)
    await collect(tts, "one")
    await collect(tts, "two")
    await tts.close()
    ports = f.client_ports
    assert len(ports) == 2 and ports[0] == ports[1]


async def test_cancelling_consumer_closes_http_stream(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    tts = ElevenLabsTTS(api_key=KEY, base_url=base)
    assert await cancel_mid_stream(tts, f) == (1, 0)  # aborted once, never read to its end
    await tts.close()


async def test_blank_text_sends_nothing(fake: tuple[FakeElevenLabs, str]) -> None:
    f, base = fake
    tts = ElevenLabsTTS(api_key=KEY, base_url=base)
    assert await collect(tts, "") == []
    await tts.close()
    assert f.requests == []


async def test_fake_is_strict(fake: tuple[FakeElevenLabs, str]) -> None:
    """The fake refuses what the API refuses, so a sloppy client cannot pass."""
    _, base = fake
    url = f"{base}/v1/text-to-speech/{SARAH}/stream"
    ok = {"text": "hi", "model_id": "eleven_flash_v2_5"}
    hdr = {"xi-api-key": KEY}
    q = {"output_format": "pcm_16000"}
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, params=q, json=ok, headers=hdr)).status_code == 200
        bearer = {"Authorization": f"Bearer {KEY}"}
        assert (await client.post(url, params=q, json=ok, headers=bearer)).status_code == 401
        in_body = {**ok, "output_format": "pcm_16000"}
        assert (await client.post(url, params=q, json=in_body, headers=hdr)).status_code == 422
        assert (await client.post(url, json=ok, headers=hdr)).status_code == 400  # default would be mp3
        assert (
            await client.post(url, params={"output_format": "pcm_1"}, json=ok, headers=hdr)
        ).status_code == 422
        assert (await client.post(url, params=q, json={"model_id": "x"}, headers=hdr)).status_code == 422
        bad_settings = {**ok, "voice_settings": {"stability": 3}}
        assert (await client.post(url, params=q, json=bad_settings, headers=hdr)).status_code == 422
        name_url = f"{base}/v1/text-to-speech/rachel/stream"
        assert (await client.post(name_url, params=q, json=ok, headers=hdr)).status_code == 404
