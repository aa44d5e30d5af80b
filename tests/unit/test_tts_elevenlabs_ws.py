"""ElevenLabsWebSocketTTS (stream-input) against the strict fake (protocols/tts.md §1.2)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.tts import elevenlabs_ws as mod
from getpatter.tts.elevenlabs_ws import ElevenLabsTTSError, ElevenLabsWebSocketTTS
from tests.fakes.elevenlabs_ws import FakeElevenLabsWS
from tests.fakes.openai_audio import tone
from tests.fakes.server import running
from tests.unit._tts_stream import cancel_after_first_chunk

KEY = "el-ws-secret-key-0123"
RACHEL = "21m00Tcm4TlvDq8ikWAM"


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeElevenLabsWS, str]]:
    f = FakeElevenLabsWS(api_key=KEY)
    async with running(f.app) as srv:
        yield f, srv.http_url


def make(base: str, **kwargs: object) -> ElevenLabsWebSocketTTS:
    return ElevenLabsWebSocketTTS(api_key=KEY, base_url=base, **kwargs)  # type: ignore[arg-type]


async def collect(tts: ElevenLabsWebSocketTTS, text: str) -> bytes:
    return b"".join([c async for c in tts.synthesize(text)])


def pcm_len(text: str, rate: int = 16000, width: int = 2) -> int:
    return int(rate * len(text) * 40.0 / 1000) * width


async def test_handshake_and_messages_field_by_field(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    audio = await collect(make(base), "Hello there.")
    (conn,) = f.connections
    assert conn.path == f"/v1/text-to-speech/{RACHEL}/stream-input"
    assert conn.query == {
        "model_id": "eleven_flash_v2_5",
        "output_format": "pcm_16000",
        "auto_mode": "true",
        "inactivity_timeout": "60",
    }
    assert conn.headers["xi-api-key"] == KEY and "authorization" not in conn.headers
    assert conn.messages == [{"text": " "}, {"text": "Hello there. "}, {"text": ""}]
    assert conn.sent[-1] == {"isFinal": True} and conn.server_close == 1000
    assert audio == tone("pcm16", 16000, len("Hello there.") * 40.0)


async def test_optional_settings_travel_in_query_and_initial_message(
    fake: tuple[FakeElevenLabsWS, str],
) -> None:
    f, base = fake
    settings = {"stability": 0.5, "similarity_boost": 0.8, "speed": 1.0}
    tts = make(
        base,
        voice_id="adam",
        model_id="eleven_turbo_v2_5",
        voice_settings=settings,
        language_code="it",
        auto_mode=False,
        inactivity_timeout=180,
        chunk_length_schedule=[120, 160, 250, 290],
    )
    await collect(tts, "Ciao a tutti")
    (conn,) = f.connections
    assert conn.path == "/v1/text-to-speech/pNInz6obpgDQGcFmaJgB/stream-input"
    assert conn.query == {
        "model_id": "eleven_turbo_v2_5",
        "output_format": "pcm_16000",
        "auto_mode": "false",
        "inactivity_timeout": "180",
        "language_code": "it",
    }
    assert conn.messages[0] == {
        "text": " ",
        "voice_settings": settings,
        "generation_config": {"chunk_length_schedule": [120, 160, 250, 290]},
    }


async def test_audio_length_follows_text_and_twilio_is_mulaw(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    tts = make(base)
    assert tts.audio_format == PCM16_16K
    short, long = "Short.", "A considerably longer sentence than the first one."
    a, b = await collect(tts, short), await collect(tts, long)
    assert (len(a), len(b)) == (pcm_len(short), pcm_len(long))
    twilio = ElevenLabsWebSocketTTS.for_twilio(api_key=KEY, base_url=base)
    assert twilio.audio_format == MULAW_8K
    mu = await collect(twilio, long)
    assert f.connections[-1].query["output_format"] == "ulaw_8000"
    assert mu == tone("mulaw", 8000, len(long) * 40.0)
    telnyx = ElevenLabsWebSocketTTS.for_telnyx(api_key=KEY, base_url=base)
    assert telnyx.audio_format == PCM16_16K


async def test_chunks_hold_whole_samples(fake: tuple[FakeElevenLabsWS, str]) -> None:
    _, base = fake
    chunks = [c async for c in make(base).synthesize("Odd sized frames need re-cutting here.")]
    assert len(chunks) >= 3 and all(c and len(c) % 2 == 0 for c in chunks)


async def test_open_stream_tokens_in_audio_out_before_end(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    tts = make(base)
    async with await tts.open_stream() as stream:
        got: list[bytes] = []
        first_audio = asyncio.Event()

        async def consume() -> None:
            async for chunk in stream:
                got.append(chunk)
                first_audio.set()

        reader = asyncio.create_task(consume())
        for token in ["Hel", "lo the", "re. ", "How are", " you?"]:
            await stream.push_text(token)
        # A whole sentence was sent, so audio arrives before the end of input (auto mode).
        await asyncio.wait_for(first_audio.wait(), 5)
        await stream.end()
        await asyncio.wait_for(reader, 5)
    conn = f.connections[0]
    assert conn.messages == [
        {"text": " "},
        {"text": "Hello "},
        {"text": "there. "},
        {"text": "How "},
        {"text": "are "},
        {"text": "you? "},
        {"text": ""},
    ]
    assert conn.spoken == ["Hello there.", "How are you?"]
    assert len(b"".join(got)) == pcm_len("Hello there.") + pcm_len("How are you?")
    assert stream.characters == len("Hello there. How are you?")


async def test_flush_speaks_without_final(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    stream = await make(base, auto_mode=False).open_stream()
    await stream.push_text("no sentence end yet")
    await stream.flush()
    audio: list[bytes] = []
    iterator = aiter(stream)
    while sum(map(len, audio)) < pcm_len("no sentence end yet"):
        audio.append(await asyncio.wait_for(anext(iterator), 5))
    assert f.connections[0].messages[-1] == {"text": "yet ", "flush": True}
    assert {"isFinal": True} not in f.connections[0].sent
    await stream.end()
    rest = [c async for c in iterator]
    assert rest == [] and f.connections[0].sent[-1] == {"isFinal": True}


def test_config_validation() -> None:
    tts = ElevenLabsWebSocketTTS(api_key=KEY)
    assert (tts.provider_id, tts.model_id, tts.voice_id) == ("elevenlabs_ws", "eleven_flash_v2_5", RACHEL)
    assert mod.TTS is ElevenLabsWebSocketTTS
    assert KEY not in repr(tts)
    with pytest.raises(PatterConfigError, match="eleven_v3"):
        ElevenLabsWebSocketTTS(api_key=KEY, model_id="eleven_v3")
    with pytest.raises(PatterConfigError, match="auto_mode=False"):
        ElevenLabsWebSocketTTS(api_key=KEY, chunk_length_schedule=[120])
    with pytest.raises(PatterConfigError, match="5-500"):
        ElevenLabsWebSocketTTS(api_key=KEY, auto_mode=False, chunk_length_schedule=[120, 900])
    with pytest.raises(PatterConfigError, match="inactivity_timeout"):
        ElevenLabsWebSocketTTS(api_key=KEY, inactivity_timeout=181)
    with pytest.raises(PatterConfigError, match="output_format"):
        ElevenLabsWebSocketTTS(api_key=KEY, output_format="mp3_44100_128")
    with pytest.raises(PatterConfigError, match="frame_timeout"):
        ElevenLabsWebSocketTTS(api_key=KEY, frame_timeout=0)


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(PatterConfigError) as info:
        ElevenLabsWebSocketTTS()
    assert "api_key" in str(info.value) and "ELEVENLABS_API_KEY" in str(info.value)


async def test_wrong_key_is_authentication_error(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    wrong = "el-wrong-key-777"
    tts = ElevenLabsWebSocketTTS(api_key=wrong, base_url=base)
    with pytest.raises(AuthenticationError) as info:
        await collect(tts, "Hello")
    assert wrong not in str(info.value) and "Invalid API key" in str(info.value)
    assert f.connections[0].server_close == 1008


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (429, RateLimitError), (503, PatterConnectionError)]
)
async def test_handshake_refusals(
    fake: tuple[FakeElevenLabsWS, str], status: int, error: type[Exception]
) -> None:
    f, base = fake
    f.reject_status = status
    with pytest.raises(error) as info:
        await collect(make(base), "Hello")
    assert f"HTTP {status}" in str(info.value)


async def test_error_frame_raises_with_vendor_code(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    f.error_after_frames = 2
    with pytest.raises(ElevenLabsTTSError) as info:
        await collect(make(base), "This request runs out of quota midway.")
    assert info.value.vendor_code == "quota_exceeded" and isinstance(info.value, PatterConnectionError)


async def test_drop_before_final_is_error(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    f.drop_after_frames = 2
    with pytest.raises(ElevenLabsTTSError, match="before isFinal"):
        await collect(make(base), "This one is dropped midway through.")


async def test_stall_oversize_and_bad_base64(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    f.stall_after_frames = 1
    with pytest.raises(ElevenLabsTTSError, match="stall"):
        await collect(make(base, frame_timeout=0.2), "This one stalls after a frame.")
    f.stall_after_frames, f.oversize_frame = None, True
    with pytest.raises(ElevenLabsTTSError, match="larger than"):
        await collect(make(base), "Big frames.")
    f.oversize_frame, f.bad_base64 = False, True
    with pytest.raises(ElevenLabsTTSError, match="base64"):
        await collect(make(base), "Garbage.")


async def test_cancelling_consumer_closes_socket(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    f.stall_after_frames = 2
    await cancel_after_first_chunk(make(base))
    await asyncio.wait_for(f.connections[0].gone.wait(), 5)
    assert f.connections[0].server_close is None  # the client, not the server, ended it


async def test_blank_text_opens_nothing(fake: tuple[FakeElevenLabsWS, str]) -> None:
    f, base = fake
    assert await collect(make(base), "  ") == b""
    assert f.connections == []


async def test_fake_is_strict(fake: tuple[FakeElevenLabsWS, str]) -> None:
    """The fake refuses what the API refuses: missing BOS space, unterminated chunk, v3, bad format."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    _, base = fake
    ws_base = base.replace("http", "ws") + f"/v1/text-to-speech/{RACHEL}/stream-input"
    good = "model_id=eleven_flash_v2_5&output_format=pcm_16000"
    cases = [
        (good, ['{"text":"hi "}']),
        (good, ['{"text":" "}', '{"text":"no space"}']),
        ("model_id=eleven_v3&output_format=pcm_16000", ['{"text":" "}']),
        ("model_id=eleven_flash_v2_5&output_format=mp3_44100_128", ['{"text":" "}']),
        (good + "&inactivity_timeout=500", ['{"text":" "}']),
    ]
    for query, messages in cases:
        async with connect(f"{ws_base}?{query}", additional_headers={"xi-api-key": KEY}) as ws:
            with contextlib.suppress(ConnectionClosed):
                for m in messages:
                    await ws.send(m)
            replies: list[str | bytes] = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    replies.append(await ws.recv())
            assert '"code":1008' in str(replies[-1]) and ws.close_code == 1008
    # Key in the first message is accepted too.
    async with connect(f"{ws_base}?{good}") as ws:
        await ws.send(f'{{"text":" ","xi_api_key":"{KEY}"}}')
        await ws.send('{"text":"ok "}')
        await ws.send('{"text":""}')
        replies = [r async for r in ws]
        assert '"isFinal":true' in str(replies[-1]) and ws.close_code == 1000


async def test_paced_fake_sends_fixed_audio_chunks_of_the_same_tone() -> None:
    # The benchmark's pacing (off by default): after the first-audio delay, pace_chunk_ms of audio per
    # frame. Timing is not asserted, only the framing and that the audio is unchanged.
    f = FakeElevenLabsWS(api_key=KEY, first_byte_delay_s=0.001, pace_chunk_ms=100, pace_speed=1000.0)
    async with running(f.app) as srv:
        audio = await collect(make(srv.http_url), "Hello there.")  # 12 chars x 40 ms = 480 ms
    (conn,) = f.connections
    frames = [m for m in conn.sent if "isFinal" in m and m["isFinal"] is None]
    assert len(frames) == 5  # four 100 ms frames and the last 80 ms
    assert audio == tone("pcm16", 16000, len("Hello there.") * 40.0)
    assert conn.sent[-1] == {"isFinal": True}
