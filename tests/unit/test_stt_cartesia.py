"""CartesiaSTT against the strict fake manual-finalize STT WebSocket (real WebSocket on 127.0.0.1)."""

from __future__ import annotations

import contextlib

import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.stt import cartesia
from getpatter.stt.base import Transcript
from getpatter.stt.cartesia import CartesiaSTT
from tests.fakes._segmenter import encode, silence, tone
from tests.fakes.cartesia_stt import FakeCartesiaSTT
from tests.unit._stt_stream import drain, feed, finals, serve, until_final

KEY = "sk_car_test"


def test_config_defaults_and_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="CARTESIA_API_KEY") as info:
        CartesiaSTT()
    assert "api_key" in str(info.value)
    for kwargs, name in [
        ({"sample_rate": 22050}, "sample_rate"),
        ({"encoding": "mp3"}, "encoding"),
        ({"min_volume": 2}, "min_volume"),
        ({"base_url": "nope"}, "base_url"),
    ]:
        with pytest.raises(PatterConfigError, match=name):
            CartesiaSTT(KEY, **kwargs)
    monkeypatch.setenv("CARTESIA_API_KEY", "sk_car_secret_env")
    stt = CartesiaSTT()
    assert (stt.provider_id, stt.model, stt.language, stt.input_format) == (
        "cartesia_stt",
        "ink-whisper",
        "en",
        PCM16_16K,
    )
    assert stt.needs_vad_end_of_turn and stt.url == "wss://api.cartesia.ai/stt/websocket"
    assert "secret" not in repr(stt)
    assert CartesiaSTT.for_twilio(KEY).input_format == MULAW_8K
    assert cartesia.STT is CartesiaSTT


async def test_handshake_headers_query_and_close_command() -> None:
    fake = FakeCartesiaSTT(KEY)
    async with serve(fake) as url:
        stream = await CartesiaSTT(KEY, base_url=url, min_volume=0.1, max_silence_duration_secs=2).open()
        assert await drain(stream) == []
    (conn,) = fake.connections
    assert conn.query_items == [
        ("model", "ink-whisper"),
        ("language", "en"),
        ("encoding", "pcm_s16le"),
        ("sample_rate", "16000"),
        ("min_volume", "0.1"),
        ("max_silence_duration_secs", "2"),
    ]
    assert conn.headers["x-api-key"] == KEY and conn.headers["cartesia-version"] == "2025-04-16"
    assert conn.commands == ["close"] and [m["type"] for m in conn.sent] == ["done"]
    assert conn.close_code == 1000


async def test_finalize_yields_one_end_of_turn_final_with_the_turns_text() -> None:
    fake = FakeCartesiaSTT(KEY, ["I want to", "change my plan"])
    async with serve(fake) as url:
        stream = await CartesiaSTT(KEY, base_url=url).open()
        # Two segments inside one caller turn (a pause the server fixes as is_final), then our VAD's end.
        await feed(stream, tone(300) + silence(450) + tone(300))
        await stream.finalize()
        events = await until_final(stream)
        assert finals(events) == [Transcript("I want to change my plan", True, True)]
        interims = [e.text for e in events if isinstance(e, Transcript) and not e.is_final]
        assert interims[0] == "I" and "I want to change" in interims
        # A finalize with nothing heard still answers the pipeline with an empty end-of-turn final.
        await feed(stream, silence(200))
        await stream.finalize()
        assert await until_final(stream) == [Transcript("", True, True)]
        assert await drain(stream) == []
    conn = fake.connections[0]
    assert conn.commands == ["finalize", "finalize", "close"]
    assert [m["is_final"] for m in conn.sent_of("transcript")].count(True) == 2
    assert stream.audio_seconds == pytest.approx(1.25)


async def test_close_flushes_held_text_as_a_last_final() -> None:
    fake = FakeCartesiaSTT(KEY, ["goodbye"])
    audio = encode("mulaw", tone(300, 8000))
    async with serve(fake) as url:
        stream = await CartesiaSTT.for_twilio(KEY, base_url=url).open()
        await feed(stream, audio, step=160)
        events = await drain(stream)
    assert finals(events) == [Transcript("goodbye", True, True)]
    conn = fake.connections[0]
    assert (conn.query["encoding"], conn.query["sample_rate"]) == ("pcm_mulaw", "8000")
    assert bytes(conn.audio) == audio


async def test_auth_rate_limit_and_refusals() -> None:
    fake = FakeCartesiaSTT(KEY)
    async with serve(fake) as url:
        with pytest.raises(AuthenticationError) as info:
            await CartesiaSTT("sk_car_wrong_secret", base_url=url).open()
        assert "401" in str(info.value) and "wrong_secret" not in str(info.value)
        with pytest.raises(PatterConnectionError, match="Cartesia-Version"):
            await CartesiaSTT(KEY, base_url=url, version="").open()
        fake.reject_status = 429
        with pytest.raises(RateLimitError):
            await CartesiaSTT(KEY, base_url=url).open()
    assert [s for s, _ in fake.refusals] == [401, 400, 429]


async def test_drop_and_error_message_end_the_stream() -> None:
    fake = FakeCartesiaSTT(KEY, ["x"], drop_after_seconds=0.2)
    async with serve(fake) as url:
        stream = await CartesiaSTT(KEY, base_url=url).open()
        await feed(stream, tone(300))
        with pytest.raises(PatterConnectionError, match="unexpectedly"):
            await until_final(stream)
        with pytest.raises(PatterConnectionError):
            await stream.finalize()
        await stream.close()
        fake.drop_after_seconds, fake.error_after_seconds = None, 0.1
        stream = await CartesiaSTT(KEY, base_url=url).open()
        with contextlib.suppress(PatterConnectionError):
            await feed(stream, silence(300))
        with pytest.raises(PatterConnectionError, match="500: Injected failure"):
            await until_final(stream)
        await stream.close()
