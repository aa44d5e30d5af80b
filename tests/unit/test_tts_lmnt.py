"""LMNTTTS (HTTP bytes) against the strict fake (protocols/tts.md §4.1)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

import httpx
import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K, AudioFormat
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.tts import lmnt as mod
from getpatter.tts.lmnt import LMNTTTS, Float32ToPcm16, WavHeaderStripper
from tests.fakes.lmnt import FakeLMNT, wav
from tests.fakes.openai_audio import tone
from tests.fakes.server import running
from tests.unit._tts_stream import cancel_mid_stream

KEY = "lmnt-secret-key-456"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeLMNT, str]]:
    f = FakeLMNT(api_key=KEY)
    async with running(f.app) as srv:
        yield f, srv.http_url


async def collect(tts: LMNTTTS, text: str) -> list[bytes]:
    return [c async for c in tts.synthesize(text)]


async def test_request_field_by_field_and_raw_float_becomes_pcm16(fake: tuple[FakeLMNT, str]) -> None:
    f, base = fake
    tts = LMNTTTS(api_key=KEY, base_url=base)
    chunks = await collect(tts, "Hello there.")
    await tts.close()
    (req,) = f.requests
    assert (req.method, req.path) == ("POST", "/v1/ai/speech/bytes")
    assert req.headers["x-api-key"] == KEY and "authorization" not in req.headers
    assert req.headers["content-type"].startswith("application/json")
    assert req.body == {
        "text": "Hello there.",
        "voice": "leah",
        "model": "blizzard",
        "language": "auto",
        "format": "raw",
        "sample_rate": 16000,
        "temperature": 1.0,
        "top_p": 0.8,
    }
    assert tts.audio_format == PCM16_16K
    assert all(c and len(c) % 2 == 0 for c in chunks)
    assert b"".join(chunks) == tone("pcm16", 16000, len("Hello there.") * 40.0)


async def test_aurora_language_and_options(fake: tuple[FakeLMNT, str]) -> None:
    f, base = fake
    tts = LMNTTTS(api_key=KEY, model="aurora", voice="morgan", sample_rate=24000, temperature=0.3, top_p=0.5)
    tts2 = LMNTTTS(api_key=KEY, base_url=base, language="it")
    assert (tts.language, tts.audio_format) == ("en", AudioFormat("pcm16", 24000))
    await collect(tts2, "Ciao")
    await tts2.close()
    assert f.requests[0].body["language"] == "it"
    assert tts.body("x") == {
        "text": "x",
        "voice": "morgan",
        "model": "aurora",
        "language": "en",
        "format": "raw",
        "sample_rate": 24000,
        "temperature": 0.3,
        "top_p": 0.5,
    }


async def test_length_proportional_and_twilio_mulaw(fake: tuple[FakeLMNT, str]) -> None:
    f, base = fake
    tts = LMNTTTS(api_key=KEY, base_url=base)
    short, long = "Short.", "A considerably longer sentence than the first one."
    a, b = b"".join(await collect(tts, short)), b"".join(await collect(tts, long))
    assert len(b) / len(a) == pytest.approx(len(long) / len(short), rel=0.01)
    await tts.close()
    twilio = LMNTTTS.for_twilio(api_key=KEY, base_url=base)
    assert twilio.audio_format == MULAW_8K
    mu = b"".join(await collect(twilio, long))
    await twilio.close()
    assert f.requests[-1].body["format"] == "ulaw" and f.requests[-1].body["sample_rate"] == 8000
    assert mu == tone("mulaw", 8000, len(long) * 40.0)  # WAV header stripped, bytes untouched
    assert LMNTTTS.for_telnyx(api_key=KEY).audio_format == PCM16_16K


async def test_wav_format_header_stripped(fake: tuple[FakeLMNT, str]) -> None:
    _, base = fake
    tts = LMNTTTS(api_key=KEY, base_url=base, format="wav", sample_rate=8000)
    audio = b"".join(await collect(tts, "Wave"))
    await tts.close()
    assert tts.audio_format == AudioFormat("pcm16", 8000)
    assert audio == tone("pcm16", 8000, 4 * 40.0)


def test_wav_stripper_and_float_converter_byte_by_byte() -> None:
    payload = bytes(range(200))
    stream = wav(payload, tag=7, rate=8000, width=1)
    stripper = WavHeaderStripper()
    assert b"".join(stripper.feed(stream[i : i + 1]) for i in range(len(stream))) == payload
    plain = WavHeaderStripper()
    assert plain.feed(b"not a wav header at all") == b"not a wav header at all"
    conv = Float32ToPcm16()
    floats = struct.pack("<3f", 0.5, -1.0, 2.0)
    out = b"".join(conv.feed(floats[i : i + 1]) for i in range(len(floats)))
    assert struct.unpack("<3h", out) == (16384, -32768, 32767)


def test_config_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    tts = LMNTTTS(api_key=KEY)
    assert (tts.provider_id, tts.model, tts.voice, tts.format) == ("lmnt", "blizzard", "leah", "raw")
    assert mod.TTS is LMNTTTS and KEY not in repr(tts)
    for bad in (
        {"format": "mp3"},
        {"format": "mulaw"},  # needs 8 kHz
        {"sample_rate": 22050},
        {"model": "tempest"},
        {"top_p": 0},
        {"temperature": -1},
    ):
        with pytest.raises(PatterConfigError):
            LMNTTTS(api_key=KEY, **bad)  # type: ignore[arg-type]
    monkeypatch.delenv("LMNT_API_KEY", raising=False)
    with pytest.raises(PatterConfigError) as info:
        LMNTTTS()
    assert "api_key" in str(info.value) and "LMNT_API_KEY" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (429, RateLimitError),
        (503, PatterConnectionError),
    ],
)
async def test_error_mapping(fake: tuple[FakeLMNT, str], status: int, error: type[Exception]) -> None:
    f, base = fake
    f.status, f.retry_after = status, "1"
    tts = LMNTTTS(api_key=KEY, base_url=base)
    with pytest.raises(error, match="fake fault"):
        await collect(tts, "Hello")
    await tts.close()


async def test_wrong_key_not_echoed_and_drop(fake: tuple[FakeLMNT, str]) -> None:
    f, base = fake
    wrong = LMNTTTS(api_key="lmnt-wrong-000", base_url=base)
    with pytest.raises(AuthenticationError) as info:
        await collect(wrong, "Hello")
    await wrong.close()
    assert "lmnt-wrong-000" not in str(info.value)
    f.drop_after_bytes = 1500
    tts = LMNTTTS(api_key=KEY, base_url=base)
    with pytest.raises(PatterConnectionError):
        await collect(tts, "This one drops after a while.")
    await tts.close()


async def test_cancelling_consumer_closes_http_stream(fake: tuple[FakeLMNT, str]) -> None:
    f, base = fake
    tts = LMNTTTS(api_key=KEY, base_url=base)
    assert await cancel_mid_stream(tts, f) == (1, 0)  # aborted once, never read to its end
    await tts.close()


async def test_blank_text_sends_nothing(fake: tuple[FakeLMNT, str]) -> None:
    f, base = fake
    tts = LMNTTTS(api_key=KEY, base_url=base)
    assert await collect(tts, "   ") == []
    await tts.close()
    assert f.requests == []


async def test_fake_is_strict(fake: tuple[FakeLMNT, str]) -> None:
    _, base = fake
    url = f"{base}/v1/ai/speech/bytes"
    ok = {"text": "hi", "voice": "leah", "format": "raw", "sample_rate": 16000}
    hdr = {"X-API-Key": KEY}
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, json=ok, headers=hdr)).status_code == 200
        bearer = {"Authorization": f"Bearer {KEY}"}
        assert (await client.post(url, json=ok, headers=bearer)).status_code == 401
        assert (await client.post(url, json={**ok, "format": "mulaw"}, headers=hdr)).status_code == 400
        assert (await client.post(url, json={**ok, "format": "ulaw"}, headers=hdr)).status_code == 400  # 16k
        assert (await client.post(url, json={"text": "hi"}, headers=hdr)).status_code == 400  # no voice
        assert (await client.post(url, json={**ok, "speed": 1}, headers=hdr)).status_code == 400
