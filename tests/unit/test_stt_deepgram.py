"""DeepgramSTT against the strict fake Deepgram server (real WebSocket on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from getpatter.audio.format import MULAW_8K, PCM16_16K, AudioFormat
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.stt import deepgram
from getpatter.stt.base import SpeechStarted, STTEvent, Transcript
from getpatter.stt.deepgram import DeepgramSTT, DeepgramSTTStream
from tests.fakes.deepgram import FakeDeepgram, ulaw_encode
from tests.unit._stt_stream import finals, serve

KEY = "dg-test"


def tone(ms: int, rate: int = 16000, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (amp * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16)


def silence(ms: int, rate: int = 16000) -> np.ndarray:
    return np.zeros(rate * ms // 1000, dtype=np.int16)


def pcm(*parts: np.ndarray) -> bytes:
    return np.concatenate(parts).astype("<i2").tobytes()


async def feed(stream: DeepgramSTTStream, audio: bytes, fmt: AudioFormat, chunk_ms: int = 20) -> None:
    step = fmt.bytes_for_ms(chunk_ms)
    for i in range(0, len(audio), step):
        await stream.send(audio[i : i + step])


async def drain(stream: DeepgramSTTStream) -> list[STTEvent]:
    """Close (CloseStream + drain) and return every event the stream produced."""
    events: list[STTEvent] = []

    async def collect() -> None:
        async for ev in stream:
            events.append(ev)

    task = asyncio.create_task(collect())
    await stream.close()
    await asyncio.wait_for(task, 3)
    return events


async def until(predicate: Any, timeout: float = 3.0) -> None:
    """Poll recorded fake state (the fake has no event to await); bounded, not a timing assertion."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


# -- configuration -------------------------------------------------------------------------------------


def test_missing_key_names_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="DEEPGRAM_API_KEY") as info:
        DeepgramSTT()
    assert "api_key" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"encoding": "opus"}, "encoding"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"endpointing_ms": -5}, "endpointing_ms"),
        ({"interim_results": False}, "interim_results"),  # utterance_end_ms needs interim results
        ({"base_url": "ftp://example.com"}, "base_url"),
    ],
)
def test_bad_config_names_the_parameter(kwargs: dict[str, Any], names: str) -> None:
    with pytest.raises(PatterConfigError, match=names):
        DeepgramSTT(KEY, **kwargs)


def test_defaults_formats_and_repr_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "sekrit-env-key")
    stt = DeepgramSTT()
    assert (stt.provider_id, stt.model, stt.input_format) == ("deepgram", "nova-3", PCM16_16K)
    assert stt.url == "wss://api.deepgram.com/v1/listen"
    assert "sekrit" not in repr(stt) and "sekrit" not in str(stt)
    twilio = DeepgramSTT.for_twilio("k", language="es")
    assert (twilio.input_format, twilio.encoding, twilio.sample_rate, twilio.language) == (
        MULAW_8K,
        "mulaw",
        8000,
        "es",
    )
    assert DeepgramSTT(KEY, base_url="https://eu.example:8443/prefix/").url == (
        "wss://eu.example:8443/prefix/v1/listen"
    )
    assert deepgram.STT is DeepgramSTT


# -- handshake -----------------------------------------------------------------------------------------


async def test_handshake_sends_each_query_param_and_token_header() -> None:
    fake = FakeDeepgram(KEY)
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        assert await drain(stream) == []
    (conn,) = fake.connections
    assert conn.query_items == [
        ("model", "nova-3"),
        ("language", "en"),
        ("encoding", "linear16"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", "150"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
        ("smart_format", "false"),
    ]
    assert conn.headers["authorization"] == f"Token {KEY}"
    assert conn.controls == [{"type": "CloseStream"}]
    assert [m["type"] for m in conn.sent] == ["Metadata"]
    assert conn.close_code == 1000


async def test_handshake_omits_unset_params_and_honours_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "env-key")
    fake = FakeDeepgram("env-key")
    async with serve(fake) as url:
        stt = DeepgramSTT(
            language=None,
            model="nova-2-phonecall",
            endpointing_ms=False,
            utterance_end_ms=None,
            interim_results=False,
            vad_events=False,
            smart_format=True,
            base_url=url.replace("http://", "ws://"),
        )
        await (await stt.open()).close()
    q = fake.connections[0].query
    assert "language" not in q and "utterance_end_ms" not in q
    assert (q["model"], q["endpointing"], q["interim_results"], q["vad_events"], q["smart_format"]) == (
        "nova-2-phonecall",
        "false",
        "false",
        "false",
        "true",
    )
    assert fake.connections[0].headers["authorization"] == "Token env-key"


async def test_wrong_key_is_authentication_error_without_leaking_key() -> None:
    fake = FakeDeepgram(KEY)
    async with serve(fake) as url:
        with pytest.raises(AuthenticationError) as info:
            await DeepgramSTT("wrong-secret-key", base_url=url).open()
    assert "401" in str(info.value) and "wrong-secret-key" not in str(info.value)
    assert fake.refusals[0][0] == 401 and fake.connections == []


async def test_rate_limit_and_server_error_on_handshake() -> None:
    fake = FakeDeepgram(KEY, reject_status=429, retry_after=3)
    async with serve(fake) as url:
        with pytest.raises(RateLimitError) as info:
            await DeepgramSTT(KEY, base_url=url).open()
        assert info.value.retry_after == 3.0
        fake.reject_status = 503
        with pytest.raises(PatterConnectionError) as err:
            await DeepgramSTT(KEY, base_url=url).open()
        assert not isinstance(err.value, RateLimitError) and "503" in str(err.value)


async def test_fake_refuses_what_deepgram_refuses() -> None:
    fake = FakeDeepgram(KEY)
    async with serve(fake) as url:
        with pytest.raises(PatterConnectionError, match="sample_rate"):
            await DeepgramSTT(KEY, encoding="mulaw", sample_rate=44100, base_url=url).open()
    assert fake.refusals == [(400, "sample_rate 44100 is not valid for encoding mulaw.")]


async def test_nothing_listening_is_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(PatterConnectionError, match="could not connect"):
        await DeepgramSTT(KEY, base_url=f"ws://127.0.0.1:{port}", open_timeout_s=2).open()


async def test_fake_rejects_bad_auth_and_params_on_the_upgrade() -> None:
    fake = FakeDeepgram(KEY)
    good = "encoding=linear16&sample_rate=16000"
    cases = [
        ({}, good, 401),
        ({"Authorization": f"Bearer {KEY}"}, good, 401),
        ({"Authorization": f"Token {KEY}"}, good + "&interim_results=True", 400),
        ({"Authorization": f"Token {KEY}"}, good + "&endpointing_ms=300", 400),
        ({"Authorization": f"Token {KEY}"}, "encoding=linear16", 400),
        ({"Authorization": f"Token {KEY}"}, "sample_rate=16000", 400),
    ]
    async with serve(fake) as url:
        ws_url = url.replace("http://", "ws://") + "/v1/listen?"
        for headers, query, status in cases:
            with pytest.raises(InvalidStatus) as info:
                async with connect(ws_url + query, additional_headers=headers):
                    pass
            assert info.value.response.status_code == status, query
            assert info.value.response.headers["dg-error"]
        async with connect(ws_url + good, additional_headers={"Authorization": f"Token {KEY}"}) as ws:
            await ws.send(b"\x00\x00" * 160)
            await ws.send('{"type": "CloseStream"}')
            assert orjson.loads(await ws.recv())["type"] == "Metadata"
    assert fake.connections[0].close_code == 1000


# -- audio in, transcripts out -------------------------------------------------------------------------


async def test_pcm16_bursts_become_turns_ended_by_speech_final() -> None:
    fake = FakeDeepgram(KEY, ["hello there friend", "how are you"])
    audio = pcm(silence(200), tone(400), silence(400), tone(300), silence(1300))
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        await feed(stream, audio, PCM16_16K)
        assert stream.audio_seconds == pytest.approx(2.6)
        events = await drain(stream)

    assert sum(isinstance(e, SpeechStarted) for e in events) == 2
    assert finals(events) == [
        Transcript("hello there friend", True, True, 0.98),
        Transcript("how are you", True, True, 0.98),
    ]
    interims = [e for e in events if isinstance(e, Transcript) and not e.is_final]
    assert interims and all(not e.end_of_turn and e.text for e in interims)
    assert {e.text for e in interims} >= {"hello", "hello there", "hello there friend", "how"}
    # The fake also sent an UtteranceEnd; the turn was already closed by speech_final, so no extra event.
    conn = fake.connections[0]
    assert len(conn.sent_of("UtteranceEnd")) == 1
    assert sum(isinstance(e, Transcript) and e.end_of_turn for e in events) == 2
    # Timestamps come from the audio: speech 200-600 ms, endpoint after 150 ms of silence.
    first_final = next(m for m in conn.sent_of("Results") if m["is_final"])
    assert (first_final["start"], first_final["duration"]) == (0.0, 0.75)
    assert conn.sent_of("SpeechStarted")[0]["timestamp"] == pytest.approx(0.2)
    assert bytes(conn.audio) == audio and conn.sent_of("Metadata")[0]["duration"] == pytest.approx(2.6)


async def test_twilio_mulaw_passes_through_untouched() -> None:
    fake = FakeDeepgram(KEY, ["press one for sales"])
    audio = ulaw_encode(np.concatenate([silence(100, 8000), tone(300, 8000), silence(300, 8000)]))
    async with serve(fake) as url:
        stream = await DeepgramSTT.for_twilio(KEY, base_url=url).open()
        await feed(stream, audio, MULAW_8K)
        events = await drain(stream)
    conn = fake.connections[0]
    assert (conn.query["encoding"], conn.query["sample_rate"]) == ("mulaw", "8000")
    assert bytes(conn.audio) == audio
    assert stream.audio_seconds == pytest.approx(len(audio) / 8000)
    assert finals(events) == [Transcript("press one for sales", True, True, 0.98)]


async def test_utterance_end_ends_the_turn_when_endpointing_is_off() -> None:
    fake = FakeDeepgram(KEY, ["call me back tomorrow"])
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, endpointing_ms=False, base_url=url).open()
        await feed(stream, pcm(tone(300), silence(1200)), PCM16_16K)
        events = await drain(stream)
    assert finals(events) == [
        Transcript("call me back tomorrow", True, False, 0.98),
        Transcript("", True, True),
    ]
    assert [m["type"] for m in fake.connections[0].sent if m["type"] != "Results"] == [
        "SpeechStarted",
        "UtteranceEnd",
        "Metadata",
    ]


async def test_finalize_flushes_and_the_endpoint_then_closes_the_turn() -> None:
    fake = FakeDeepgram(KEY, ["yes please"])
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        await feed(stream, pcm(tone(300)), PCM16_16K)
        await stream.finalize()
        first = [ev async for ev in _take_until_final(stream)]
        assert first[-1] == Transcript("yes please", True, False, 0.98)
        # Deepgram's endpoint then arrives as an empty speech_final Results: it still ends the turn.
        await feed(stream, pcm(silence(300)), PCM16_16K)
        await stream.finalize()  # nothing pending: the empty from_finalize Results is not an event
        events = await drain(stream)
    assert finals(events) == [Transcript("", True, True)]
    conn = fake.connections[0]
    assert conn.controls == [{"type": "Finalize"}, {"type": "Finalize"}, {"type": "CloseStream"}]
    flushed = [m for m in conn.sent_of("Results") if m["from_finalize"]]
    assert [m["channel"]["alternatives"][0]["transcript"] for m in flushed] == ["yes please", ""]


async def _take_until_final(stream: DeepgramSTTStream) -> AsyncIterator[STTEvent]:
    async for ev in stream:
        yield ev
        if isinstance(ev, Transcript) and ev.is_final:
            return


async def test_wordless_noise_is_not_a_turn() -> None:
    fake = FakeDeepgram(KEY, [])  # script exhausted: every segment transcribes to ""
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        await feed(stream, pcm(tone(300), silence(1200)), PCM16_16K)
        events = await drain(stream)
    assert events == [SpeechStarted()]
    assert len(fake.connections[0].sent_of("UtteranceEnd")) == 1


async def test_tiny_chunks_are_coalesced_and_counted() -> None:
    fake = FakeDeepgram(KEY)
    audio = pcm(silence(200))  # 6400 bytes
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        for i in range(0, len(audio), 63):  # 63-byte pieces: not even whole samples
            await stream.send(audio[i : i + 63])
        assert stream.audio_seconds == pytest.approx(0.2)
        await drain(stream)
    sizes = fake.connections[0].frame_sizes
    assert sum(sizes) == len(audio)
    assert all(size % 2 == 0 for size in sizes)
    assert all(size >= PCM16_16K.bytes_for_ms(20) for size in sizes[:-1])


# -- keepalive, failures, shutdown ---------------------------------------------------------------------


async def test_keepalive_keeps_an_idle_stream_open() -> None:
    fake = FakeDeepgram(KEY, idle_timeout_s=0.5)
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url, keepalive_interval_s=0.05).open()
        await until(lambda: len(fake.control_messages) >= 12)  # well past the fake's idle timeout
        assert fake.connections[0].close_code is None
        await drain(stream)
    controls = fake.connections[0].controls
    assert controls[-1] == {"type": "CloseStream"}
    assert all(c == {"type": "KeepAlive"} for c in controls[:-1])


async def test_idle_timeout_close_ends_iteration_with_connection_error() -> None:
    fake = FakeDeepgram(KEY, idle_timeout_s=0.2)
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()  # default keepalive (4 s) is too slow here
        with pytest.raises(PatterConnectionError, match="NET-0001"):
            async with asyncio.timeout(3):
                async for _ in stream:
                    pass
        await stream.close()
    assert fake.connections[0].close_code == 1011


async def test_socket_drop_raises_out_of_the_iterator_and_send() -> None:
    fake = FakeDeepgram(KEY, ["never finished"], drop_after_seconds=0.5)
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        events: list[STTEvent] = []
        await feed(stream, pcm(tone(400), silence(100)), PCM16_16K)  # the drop comes with the last chunk
        with pytest.raises(PatterConnectionError, match="unexpectedly"):
            async with asyncio.timeout(3):
                async for ev in stream:
                    events.append(ev)
        assert SpeechStarted() in events and not finals(events)
        with pytest.raises(PatterConnectionError):
            await stream.send(pcm(silence(40)))
        await stream.close()
        await stream.close()


async def test_vendor_error_message_raises_with_its_description() -> None:
    fake = FakeDeepgram(KEY, error_after_seconds=0.1)
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        with contextlib.suppress(PatterConnectionError):
            await feed(stream, pcm(silence(200)), PCM16_16K)
        with pytest.raises(PatterConnectionError, match="Injected failure"):
            async with asyncio.timeout(3):
                async for _ in stream:
                    pass
        await stream.close()


async def test_close_is_idempotent_and_ends_iteration_cleanly() -> None:
    fake = FakeDeepgram(KEY)
    async with serve(fake) as url:
        stream = await DeepgramSTT(KEY, base_url=url).open()
        await asyncio.gather(stream.close(), stream.close())
        await stream.close()
        await stream.send(pcm(silence(100)))  # after close: dropped, not counted
        await stream.finalize()
        assert [ev async for ev in stream] == []
    assert fake.connections[0].controls == [{"type": "CloseStream"}]
    assert stream.audio_seconds == 0.0
