"""SonioxSTT against the strict fake Soniox real-time server (real WebSocket on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from getpatter.audio.format import PCM16_16K
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.stt import soniox
from getpatter.stt.base import Transcript
from getpatter.stt.soniox import SonioxSTT
from tests.fakes._segmenter import encode, silence, tone
from tests.fakes.soniox import FakeSoniox
from tests.unit._stt_stream import drain, feed, finals, serve, until_final

KEY = "soniox-test-key"


def test_config_defaults_and_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SONIOX_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="SONIOX_API_KEY") as info:
        SonioxSTT()
    assert "api_key" in str(info.value)
    for kwargs, name in [
        ({"audio_format": "opus"}, "audio_format"),
        ({"max_endpoint_delay_ms": 100}, "max_endpoint_delay_ms"),
        ({"language_hints_strict": True}, "language_hints"),
        ({"base_url": "x"}, "base_url"),
    ]:
        with pytest.raises(PatterConfigError, match=name):
            SonioxSTT(KEY, **kwargs)
    monkeypatch.setenv("SONIOX_API_KEY", "soniox-secret-env")
    stt = SonioxSTT()
    assert (stt.provider_id, stt.model, stt.input_format) == ("soniox", "stt-rt-v4", PCM16_16K)
    assert stt.url == "wss://stt-rt.soniox.com/transcribe-websocket" and "secret" not in repr(stt)
    assert soniox.STT is SonioxSTT


async def test_handshake_bearer_and_config_message_field_by_field() -> None:
    fake = FakeSoniox(KEY)
    async with serve(fake) as url:
        stt = SonioxSTT(KEY, base_url=url, language_hints=["en", "es"], client_reference_id="call-1")
        assert await drain(await stt.open()) == []
    (conn,) = fake.connections
    assert conn.headers["authorization"] == f"Bearer {KEY}"
    assert conn.config == {
        "model": "stt-rt-v4",
        "audio_format": "pcm_s16le",
        "sample_rate": 16000,
        "num_channels": 1,
        "enable_endpoint_detection": True,
        "max_endpoint_delay_ms": 500,
        "enable_speaker_diarization": False,
        "enable_language_identification": True,
        "language_hints": ["en", "es"],
        "language_hints_strict": False,
        "client_reference_id": "call-1",
    }
    assert "api_key" not in conn.config  # the deprecated in-message key is never sent
    assert conn.sent[-1]["finished"] is True and conn.close_code == 1000


async def test_tokens_build_interims_and_endpoint_ends_the_turn() -> None:
    fake = FakeSoniox(KEY, ["Hello there friend", "Good bye"])
    audio = silence(100) + tone(400) + silence(600) + tone(300) + silence(600)
    async with serve(fake) as url:
        stream = await SonioxSTT(KEY, base_url=url).open()
        await feed(stream, audio)
        events = await drain(stream)
    assert finals(events) == [
        Transcript("Hello there friend", True, True, 0.75),
        Transcript("Good bye", True, True, 0.75),
    ]
    interims = [e.text for e in events if isinstance(e, Transcript) and not e.is_final]
    assert interims[:3] == ["He", "Hello", "Hello th"]  # sub-word tokens joined as sent
    conn = fake.connections[0]
    assert [t["text"] for t in conn.tokens if t["text"].startswith("<")] == ["<end>", "<end>"]
    assert bytes(conn.audio) == audio and stream.audio_seconds == pytest.approx(2.0)


async def test_finalize_gets_fin_and_mulaw_passes_through() -> None:
    fake = FakeSoniox(KEY, ["transfer me please"])
    audio = encode("mulaw", tone(400, 8000))
    async with serve(fake) as url:
        stream = await SonioxSTT(KEY, base_url=url, audio_format="mulaw", sample_rate=8000).open()
        await feed(stream, audio, step=160)
        await stream.finalize()
        assert finals(await until_final(stream)) == [Transcript("transfer me please", True, True, 0.75)]
        await drain(stream)
    conn = fake.connections[0]
    assert conn.config is not None and conn.config["audio_format"] == "mulaw"
    assert conn.controls == [{"type": "finalize"}] and bytes(conn.audio) == audio
    assert [t["text"] for t in conn.tokens if t["text"].startswith("<")] == ["<fin>"]


async def test_keepalive_when_no_audio_flows() -> None:
    fake = FakeSoniox(KEY)
    async with serve(fake) as url:
        stream = await SonioxSTT(KEY, base_url=url, keepalive_interval_s=0.02).open()
        async with asyncio.timeout(3):
            while len(fake.connections[0].controls) < 3 if fake.connections else True:
                await asyncio.sleep(0.01)
        await drain(stream)
    assert fake.connections[0].controls[:3] == [{"type": "keepalive"}] * 3


async def test_auth_rate_limit_and_bad_config() -> None:
    fake = FakeSoniox(KEY)
    async with serve(fake) as url:
        with pytest.raises(AuthenticationError) as info:
            await SonioxSTT("soniox-wrong-secret", base_url=url).open()
        assert "401" in str(info.value) and "wrong-secret" not in str(info.value)
        stream = await SonioxSTT(KEY, base_url=url, model="stt-rt-v9").open()
        with pytest.raises(PatterConnectionError, match="Invalid model"):
            await until_final(stream)
        await stream.close()
        fake.reject_status = 429
        with pytest.raises(RateLimitError):
            await SonioxSTT(KEY, base_url=url).open()


async def test_drop_and_vendor_error() -> None:
    fake = FakeSoniox(KEY, ["x"], drop_after_seconds=0.2)
    async with serve(fake) as url:
        stream = await SonioxSTT(KEY, base_url=url).open()
        await feed(stream, tone(300))
        with pytest.raises(PatterConnectionError, match="unexpectedly"):
            await until_final(stream)
        with pytest.raises(PatterConnectionError):
            await stream.send(silence(100))
        await stream.close()
        fake.drop_after_seconds, fake.error_after_seconds = None, 0.1
        stream = await SonioxSTT(KEY, base_url=url).open()
        with contextlib.suppress(PatterConnectionError):
            await feed(stream, silence(300))
        with pytest.raises(PatterConnectionError, match=r"503.*Cannot continue"):
            await until_final(stream)
        await stream.close()
