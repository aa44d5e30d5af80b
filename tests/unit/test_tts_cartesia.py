"""CartesiaTTS (WebSocket) against the strict fake (protocols/tts.md §2.2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K, AudioFormat
from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.tts import cartesia as mod
from getpatter.tts.cartesia import CartesiaTTS
from tests.fakes.cartesia_tts import FakeCartesiaTTS
from tests.fakes.openai_audio import tone
from tests.fakes.server import running
from tests.unit._tts_stream import cancel_after_first_chunk

KEY = "cartesia-secret-key-42"
VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeCartesiaTTS, str]]:
    f = FakeCartesiaTTS(api_key=KEY)
    async with running(f.app) as srv:
        yield f, srv.http_url


async def collect(tts: CartesiaTTS, text: str) -> bytes:
    return b"".join([c async for c in tts.synthesize(text)])


def make(base: str, **kwargs: object) -> CartesiaTTS:
    return CartesiaTTS(api_key=KEY, base_url=base, **kwargs)  # type: ignore[arg-type]


async def test_request_field_by_field(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    tts = make(base)
    audio = await collect(tts, "Hello there.")
    await tts.close()
    (conn,) = f.connections
    assert conn.headers["x-api-key"] == KEY and conn.headers["cartesia-version"] == "2025-04-16"
    assert conn.query == {}  # the key never travels in the URL
    (req,) = conn.messages
    ctx = req.pop("context_id")
    assert ctx.startswith("ctx-")
    assert req == {
        "model_id": "sonic-2",
        "transcript": "Hello there.",
        "voice": {"mode": "id", "id": VOICE},
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
        "language": "en",
        "continue": False,
    }
    assert conn.completed == [ctx] and conn.replies[-1]["type"] == "done"
    assert audio == tone("pcm16", 16000, len("Hello there.") * 40.0)


async def test_controls_in_generation_config_and_named_speed(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    numeric = make(base, model="sonic-3", language="it", speed=1.2, volume=0.8, emotion="calm")
    named = make(base, speed="fast")
    await collect(numeric, "Ciao")
    await collect(named, "Hi")
    await numeric.close()
    await named.close()
    first, second = f.connections[0].messages[0], f.connections[1].messages[0]
    assert first["model_id"] == "sonic-3" and first["language"] == "it"
    assert first["generation_config"] == {"speed": 1.2, "volume": 0.8, "emotion": "calm"}
    assert "speed" not in first
    assert second["speed"] == "fast" and "generation_config" not in second


async def test_audio_length_and_carrier_formats(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    tts = make(base)
    assert tts.audio_format == PCM16_16K
    short, long = "Short.", "A considerably longer sentence than the first one."
    a, b = await collect(tts, short), await collect(tts, long)
    assert len(b) / len(a) == pytest.approx(len(long) / len(short), rel=0.01)
    chunks = [c async for c in tts.synthesize(long)]
    assert len(chunks) >= 3 and all(len(c) % 2 == 0 for c in chunks)
    await tts.close()
    assert len(f.connections) == 1  # one socket for every utterance
    twilio = CartesiaTTS.for_twilio(api_key=KEY, base_url=base)
    assert twilio.audio_format == MULAW_8K
    assert await collect(twilio, long) == tone("mulaw", 8000, len(long) * 40.0)
    await twilio.close()
    assert f.connections[1].messages[0]["output_format"] == {
        "container": "raw",
        "encoding": "pcm_mulaw",
        "sample_rate": 8000,
    }
    telnyx = CartesiaTTS.for_telnyx(api_key=KEY)
    assert telnyx.audio_format == PCM16_16K


async def test_concurrent_utterances_share_the_socket(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    tts = make(base)
    texts = ["One.", "Number two here.", "And the third, longest of the three."]
    results = await asyncio.gather(*(collect(tts, t) for t in texts))
    await tts.close()
    assert len(f.connections) == 1
    assert [len(r) for r in results] == [int(16000 * len(t) * 0.04) * 2 for t in texts]


async def test_reconnects_after_close(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    tts = make(base)
    await collect(tts, "first")
    await tts.close()
    await collect(tts, "second")
    await tts.close()
    assert len(f.connections) == 2


def test_config_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    tts = CartesiaTTS(api_key=KEY)
    assert (tts.provider_id, tts.model, tts.voice, tts.language) == ("cartesia_tts", "sonic-2", VOICE, "en")
    assert mod.TTS is CartesiaTTS and KEY not in repr(tts)
    assert CartesiaTTS(api_key=KEY, sample_rate=24000).audio_format == AudioFormat("pcm16", 24000)
    for bad in ({"speed": 3.0}, {"speed": "warp"}, {"volume": 0.1}, {"emotion": ""}, {"sample_rate": 11025}):
        with pytest.raises(PatterConfigError):
            CartesiaTTS(api_key=KEY, **bad)  # type: ignore[arg-type]
    with pytest.raises(PatterConfigError, match="encoding"):
        CartesiaTTS(api_key=KEY, encoding="pcm_f32le")
    with pytest.raises(PatterConfigError):
        CartesiaTTS.for_twilio(api_key=KEY, sample_rate=16000)
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    with pytest.raises(PatterConfigError) as info:
        CartesiaTTS()
    assert "api_key" in str(info.value) and "CARTESIA_API_KEY" in str(info.value)


async def test_key_from_env(fake: tuple[FakeCartesiaTTS, str], monkeypatch: pytest.MonkeyPatch) -> None:
    f, base = fake
    monkeypatch.setenv("CARTESIA_API_KEY", KEY)
    tts = CartesiaTTS(base_url=base)
    assert await collect(tts, "ok")
    assert f.connections[0].headers["x-api-key"] == KEY
    await tts.close()


async def test_wrong_key_and_refusals(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    wrong = CartesiaTTS(api_key="cartesia-wrong-1", base_url=base)
    with pytest.raises(AuthenticationError) as info:
        await collect(wrong, "Hello")
    assert "cartesia-wrong-1" not in str(info.value)
    f.reject_status = 429
    with pytest.raises(RateLimitError):
        await collect(make(base), "Hello")
    f.reject_status = 502
    with pytest.raises(PatterConnectionError):
        await collect(make(base), "Hello")


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (429, RateLimitError), (500, PatterConnectionError)]
)
async def test_error_messages_map_by_status(
    fake: tuple[FakeCartesiaTTS, str], status: int, error: type[Exception]
) -> None:
    f, base = fake
    f.error_status = status
    tts = make(base)
    with pytest.raises(error, match="fake fault"):
        await collect(tts, "Hello")
    await tts.close()


async def test_vendor_validation_error_is_provider_error(fake: tuple[FakeCartesiaTTS, str]) -> None:
    _, base = fake
    tts = make(base, voice="not-a-uuid")
    with pytest.raises(PatterError) as info:
        await collect(tts, "Hello")
    await tts.close()
    assert info.value.code == ErrorCode.PROVIDER_ERROR and "voice must be" in str(info.value)


async def test_drop_stall_and_bad_base64(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    f.drop_after_frames = 2
    tts = make(base, frame_timeout=0.2)
    with pytest.raises(PatterConnectionError, match="socket"):
        await collect(tts, "Dropped midway through the sentence.")
    f.drop_after_frames, f.stall_after_frames = None, 1
    with pytest.raises(PatterConnectionError, match="stall"):
        await collect(tts, "This one stalls.")  # reconnects transparently, then stalls
    await asyncio.wait_for(f.cancel_seen.wait(), 5)  # the stalled context was cancelled
    f.stall_after_frames, f.bad_base64 = None, True
    with pytest.raises(PatterConnectionError, match="base64"):
        await collect(tts, "Garbage.")
    await tts.close()


async def test_cancelling_consumer_cancels_the_context(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    f.stall_after_frames = 2
    tts = make(base)
    await cancel_after_first_chunk(tts)
    await asyncio.wait_for(f.cancel_seen.wait(), 5)
    conn = f.connections[0]
    assert conn.cancelled == [conn.messages[0]["context_id"]] and conn.completed == []
    assert conn.messages[-1] == {"context_id": conn.cancelled[0], "cancel": True}
    await tts.close()
    await asyncio.wait_for(conn.gone.wait(), 5)


async def test_blank_text_sends_nothing(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    assert await collect(make(base), " ") == b""
    assert f.connections == []


async def test_carrier_native_variant_has_its_own_socket(fake: tuple[FakeCartesiaTTS, str]) -> None:
    """A ``for_wire`` copy never shares the original's socket or contexts: one dying leaves the other."""
    f, base = fake
    tts = make(base)
    twilio = tts.for_wire(MULAW_8K)
    assert await collect(twilio, "Hi there.") == tone("mulaw", 8000, len("Hi there.") * 40.0)
    f.stall_after_frames = 2
    original = tts.synthesize("Still speaking here.")
    first = await anext(original)  # the original's utterance is in flight on its own socket
    assert len(f.connections) == 2
    await f.drop(0)  # the variant's socket dies under it
    assert twilio._reader is not None
    await asyncio.wait_for(twilio._reader, 5)  # ... and its reader has seen that
    f.resume.set()
    rest = b"".join([chunk async for chunk in original])
    assert first + rest == tone("pcm16", 16000, len("Still speaking here.") * 40.0)
    assert [m["output_format"]["encoding"] for m in f.connections[1].messages] == ["pcm_s16le"]
    assert [m["output_format"]["encoding"] for m in f.connections[0].messages] == ["pcm_mulaw"]
    f.stall_after_frames = None
    assert await collect(twilio, "Again.") == tone("mulaw", 8000, len("Again.") * 40.0)  # reconnects
    assert len(f.connections) == 3
    await tts.close()


async def test_close_closes_the_variants_sockets(fake: tuple[FakeCartesiaTTS, str]) -> None:
    f, base = fake
    tts = make(base)
    await collect(tts, "One.")
    await collect(tts.for_wire(MULAW_8K), "Two.")
    await collect(tts.for_wire(PCM16_16K), "Three.")  # its own format: the original itself
    assert len(f.connections) == 2
    await tts.close()
    for conn in f.connections:
        await asyncio.wait_for(conn.gone.wait(), 5)
