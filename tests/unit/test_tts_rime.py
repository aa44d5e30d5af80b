"""RimeTTS (HTTP) against the strict fake (protocols/tts.md §3.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.tts import rime as mod
from getpatter.tts.rime import RimeTTS
from tests.fakes.openai_audio import tone
from tests.fakes.rime import FakeRime
from tests.fakes.server import running
from tests.unit._tts_stream import cancel_mid_stream

KEY = "rime-secret-key-123"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeRime, str]]:
    f = FakeRime(api_key=KEY)
    async with running(f.app) as srv:
        yield f, srv.http_url


async def collect(tts: RimeTTS, text: str) -> bytes:
    return b"".join([c async for c in tts.synthesize(text)])


async def test_arcana_request_field_by_field(fake: tuple[FakeRime, str]) -> None:
    f, base = fake
    tts = RimeTTS(api_key=KEY, base_url=base, temperature=0.5, top_p=0.9, max_tokens=1200)
    audio = await collect(tts, "Hello there.")
    await tts.close()
    (req,) = f.requests
    assert (req.method, req.path) == ("POST", "/v1/rime-tts")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["accept"] == "audio/pcm"
    assert req.headers["content-type"].startswith("application/json")
    assert req.body == {
        "speaker": "astra",
        "text": "Hello there.",
        "modelId": "arcana",
        "samplingRate": 16000,
        "lang": "eng",
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 1200,
    }
    assert audio == tone("pcm16", 16000, len("Hello there.") * 40.0)


async def test_mist_options_are_camel_case_and_long_text_split(fake: tuple[FakeRime, str]) -> None:
    f, base = fake
    tts = RimeTTS(
        api_key=KEY,
        model="mistv2",
        base_url=base,
        speed_alpha=1.1,
        reduce_latency=True,
        pause_between_brackets=True,
        phonemize_between_brackets=False,
    )
    assert tts.speaker == "cove"
    text = " ".join(["word"] * 240)  # 1199 chars: three requests under the 500-char mist limit
    audio = await collect(tts, text)
    await tts.close()
    assert len(f.requests) == 3 and all(len(r.body["text"]) <= 500 for r in f.requests)
    assert " ".join(r.body["text"] for r in f.requests) == text
    assert {k: v for k, v in f.requests[0].body.items() if k != "text"} == {
        "speaker": "cove",
        "modelId": "mistv2",
        "samplingRate": 16000,
        "lang": "eng",
        "speedAlpha": 1.1,
        "reduceLatency": True,
        "pauseBetweenBrackets": True,
        "phonemizeBetweenBrackets": False,
    }
    assert len(audio) == sum(int(16000 * len(r.body["text"]) * 0.04) * 2 for r in f.requests)


async def test_length_proportional_and_twilio_mulaw(fake: tuple[FakeRime, str]) -> None:
    f, base = fake
    tts = RimeTTS(api_key=KEY, base_url=base)
    assert tts.audio_format == PCM16_16K
    short, long = "Short.", "A considerably longer sentence than the first one."
    a, b = await collect(tts, short), await collect(tts, long)
    assert len(b) / len(a) == pytest.approx(len(long) / len(short), rel=0.01)
    await tts.close()
    twilio = RimeTTS.for_twilio(api_key=KEY, base_url=base, speaker="luna")
    assert twilio.audio_format == MULAW_8K
    assert await collect(twilio, long) == tone("mulaw", 8000, len(long) * 40.0)
    await twilio.close()
    last = f.requests[-1]
    assert last.headers["accept"] == "audio/x-mulaw"
    assert (last.body["samplingRate"], last.body["speaker"]) == (8000, "luna")
    assert RimeTTS.for_telnyx(api_key=KEY).audio_format == PCM16_16K


def test_config_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    tts = RimeTTS(api_key=KEY)
    assert (tts.provider_id, tts.model, tts.speaker, tts.lang) == ("rime", "arcana", "astra", "eng")
    assert mod.TTS is RimeTTS and KEY not in repr(tts)
    with pytest.raises(PatterConfigError, match="speedAlpha"):
        RimeTTS(api_key=KEY, speed_alpha=1.2)  # a mist option on arcana
    with pytest.raises(PatterConfigError, match="temperature"):
        RimeTTS(api_key=KEY, model="mistv2", temperature=0.5)
    with pytest.raises(PatterConfigError, match="sample_rate=8000"):
        RimeTTS(api_key=KEY, encoding="mulaw")
    with pytest.raises(PatterConfigError, match="sample_rate"):
        RimeTTS(api_key=KEY, sample_rate=11025)
    monkeypatch.delenv("RIME_API_KEY", raising=False)
    with pytest.raises(PatterConfigError) as info:
        RimeTTS()
    assert "api_key" in str(info.value) and "RIME_API_KEY" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (429, RateLimitError),
        (500, PatterConnectionError),
    ],
)
async def test_error_mapping(fake: tuple[FakeRime, str], status: int, error: type[Exception]) -> None:
    f, base = fake
    f.status, f.retry_after = status, "3"
    tts = RimeTTS(api_key=KEY, base_url=base)
    with pytest.raises(error) as info:
        await collect(tts, "Hello")
    await tts.close()
    if status == 429:
        assert isinstance(info.value, RateLimitError) and info.value.retry_after == 3.0


async def test_wrong_key_not_echoed(fake: tuple[FakeRime, str]) -> None:
    _, base = fake
    tts = RimeTTS(api_key="rime-wrong-999", base_url=base)
    with pytest.raises(AuthenticationError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert "rime-wrong-999" not in str(info.value) and "Invalid API key" in str(info.value)


async def test_drop_is_connection_error(fake: tuple[FakeRime, str]) -> None:
    f, base = fake
    f.drop_after_bytes = 1500
    tts = RimeTTS(api_key=KEY, base_url=base)
    with pytest.raises(PatterConnectionError):
        await collect(tts, "This one drops after a while.")
    await tts.close()


async def test_cancelling_consumer_closes_http_stream(fake: tuple[FakeRime, str]) -> None:
    f, base = fake
    tts = RimeTTS(api_key=KEY, base_url=base)
    assert await cancel_mid_stream(tts, f) == (1, 0)  # aborted once, never read to its end
    await tts.close()


async def test_fake_is_strict(fake: tuple[FakeRime, str]) -> None:
    _, base = fake
    url = f"{base}/v1/rime-tts"
    ok = {"speaker": "astra", "text": "hi", "modelId": "arcana", "samplingRate": 16000}
    auth = {"Authorization": f"Bearer {KEY}", "Accept": "audio/pcm"}
    async with httpx.AsyncClient() as client:
        assert (await client.post(url, json=ok, headers=auth)).status_code == 200
        assert (await client.post(url, json=ok, headers={**auth, "Authorization": KEY})).status_code == 401
        assert (await client.post(url, json=ok, headers={**auth, "Accept": "audio/mp3"})).status_code == 400
        mulaw16k = {**auth, "Accept": "audio/x-mulaw"}
        assert (await client.post(url, json=ok, headers=mulaw16k)).status_code == 400
        snake = {**ok, "model_id": "arcana"}
        assert (await client.post(url, json=snake, headers=auth)).status_code == 400
        wrong_family = {**ok, "speedAlpha": 1.0}
        assert (await client.post(url, json=wrong_family, headers=auth)).status_code == 400
