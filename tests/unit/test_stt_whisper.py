"""WhisperSTT (batch, VAD-finalized) against the strict fake transcription endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from getpatter.audio.format import PCM16_16K
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.stt import whisper
from getpatter.stt._batch import is_hallucination
from getpatter.stt.base import STTEvent, Transcript
from getpatter.stt.whisper import WhisperSTT
from tests.fakes._segmenter import silence, tone, wav_pcm16
from tests.fakes.openai_transcribe import FakeOpenAITranscribe
from tests.unit._stt_stream import drain, feed, serve

KEY = "sk-whisper-test"
EOT = Transcript("", is_final=True, end_of_turn=True)


async def next_event(stream: Any) -> STTEvent:
    async with asyncio.timeout(5):
        event: STTEvent = await stream.__anext__()
        return event


# -- configuration -------------------------------------------------------------------------------------


def test_missing_key_names_parameter_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="OPENAI_API_KEY") as info:
        WhisperSTT()
    assert "api_key" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"response_format": "srt"}, "response_format"),
        ({"language": "english"}, "language"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"temperature": 3.0}, "temperature"),
        ({"dedupe_window_s": -1}, "dedupe_window_s"),
    ],
)
def test_bad_config_names_the_parameter(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(PatterConfigError, match=name):
        WhisperSTT(KEY, **kwargs)


def test_defaults_and_repr_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-env")
    stt = WhisperSTT()
    assert (stt.provider_id, stt.model, stt.language, stt.input_format) == (
        "whisper",
        "whisper-1",
        "en",
        PCM16_16K,
    )
    assert stt.needs_vad_end_of_turn is True
    assert stt.url == "https://api.openai.com/v1/audio/transcriptions"
    assert "sk-secret" not in repr(stt)
    assert whisper.STT is WhisperSTT


def test_hallucination_rules() -> None:
    assert is_hallucination("Thanks for watching!", voiced_s=5.0)
    assert is_hallucination(" you", voiced_s=0.1)
    assert is_hallucination("Thank you.", voiced_s=0.2)
    assert not is_hallucination("Thank you.", voiced_s=1.0)
    assert not is_hallucination("I need a plumber", voiced_s=0.2)


# -- the request ---------------------------------------------------------------------------------------


async def test_finalize_uploads_one_wav_and_yields_one_end_of_turn_final() -> None:
    fake = FakeOpenAITranscribe(KEY, ["I would like to book a table"])
    speech = tone(600)
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, base_url=url).open()
        await feed(stream, silence(1000) + speech + silence(200))
        assert fake.uploads == []  # nothing leaves before the VAD says the turn ended
        await stream.finalize()
        assert await next_event(stream) == Transcript("I would like to book a table", True, True)
        await drain(stream)
    (upload,) = fake.uploads
    assert upload.headers["authorization"] == f"Bearer {KEY}"
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert [p.name for p in upload.parts] == ["model", "response_format", "language", "file"]
    assert upload.fields == {"model": "whisper-1", "response_format": "json", "language": "en"}
    assert (upload.file.filename, upload.file.content_type) == ("utterance.wav", "audio/wav")
    channels, width, rate, pcm = wav_pcm16(upload.file.data)
    assert (channels, width, rate) == (1, 2, 16000)
    # Leading silence is cut to a 300 ms pre-roll; the speech and its tail go up byte for byte.
    assert pcm == silence(300) + speech + silence(200)
    assert stream.audio_seconds == pytest.approx(1.1)


async def test_utterances_are_answered_in_order_and_billed_by_upload() -> None:
    fake = FakeOpenAITranscribe(KEY, ["first thing", "second thing"])
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, language=None, response_format="text", base_url=url).open()
        await feed(stream, tone(400))
        await stream.finalize()
        await feed(stream, tone(500))
        await stream.finalize()
        events = await drain(stream)
    assert events == [Transcript("first thing", True, True), Transcript("second thing", True, True)]
    assert [u.fields for u in fake.uploads] == [{"model": "whisper-1", "response_format": "text"}] * 2
    assert stream.audio_seconds == pytest.approx(0.9)


async def test_silence_is_never_uploaded_but_still_ends_the_turn() -> None:
    fake = FakeOpenAITranscribe(KEY, ["unused"])
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, base_url=url).open()
        await feed(stream, silence(800))
        await stream.finalize()
        assert await next_event(stream) == EOT
        await drain(stream)
    assert fake.uploads == [] and stream.audio_seconds == 0.0


async def test_filler_hallucinations_are_dropped() -> None:
    fake = FakeOpenAITranscribe(KEY, ["Thanks for watching!", "Thank you."])
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, base_url=url).open()
        # A short quiet blip: above our silence gate, below the fake's segmenter -> "Thank you." invented.
        await feed(stream, tone(200, amp=300.0))
        await stream.finalize()
        assert await next_event(stream) == EOT
        await feed(stream, tone(800))  # a long voiced segment scripted as an outro phrase: still dropped
        await stream.finalize()
        assert await next_event(stream) == EOT
        await feed(stream, tone(800))  # a real, long "Thank you." is kept
        await stream.finalize()
        assert await next_event(stream) == Transcript("Thank you.", True, True)
        await drain(stream)
    assert len(fake.uploads) == 3


async def test_a_repeat_within_the_dedupe_window_is_dropped() -> None:
    fake = FakeOpenAITranscribe(KEY, ["yes", "yes", "yes"])
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, base_url=url, dedupe_window_s=3600).open()
        for _ in range(2):
            await feed(stream, tone(500))
            await stream.finalize()
        assert await drain(stream) == [Transcript("yes", True, True), EOT]
        stream = await WhisperSTT(KEY, base_url=url, dedupe_window_s=0).open()
        await feed(stream, tone(500))
        await stream.finalize()
        assert await drain(stream) == [Transcript("yes", True, True)]


async def test_close_flushes_voiced_audio_and_is_idempotent() -> None:
    fake = FakeOpenAITranscribe(KEY, ["goodbye then"])
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, base_url=url).open()
        await feed(stream, tone(500))
        events: list[STTEvent] = []

        async def collect() -> None:
            async for ev in stream:
                events.append(ev)

        task = asyncio.create_task(collect())
        await asyncio.gather(stream.close(), stream.close())
        await stream.close()
        await asyncio.wait_for(task, 5)
        await stream.send(tone(100))  # after close: ignored
        await stream.finalize()
    assert events == [Transcript("goodbye then", True, True)]
    assert len(fake.uploads) == 1


# -- failures ------------------------------------------------------------------------------------------


async def test_wrong_key_is_authentication_error_without_the_key() -> None:
    fake = FakeOpenAITranscribe(KEY, ["x"])
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT("sk-wrong-secret", base_url=url).open()
        await feed(stream, tone(300))
        await stream.finalize()
        with pytest.raises(AuthenticationError) as info:
            await next_event(stream)
        assert "401" in str(info.value) and "sk-wrong-secret" not in str(info.value)
        with pytest.raises(AuthenticationError):
            await stream.send(tone(20))
        await stream.close()
    assert fake.refusals[0][0] == 401 and fake.uploads == []


async def test_rate_limit_and_server_error() -> None:
    fake = FakeOpenAITranscribe(KEY, status=429, retry_after="7")
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, base_url=url).open()
        await feed(stream, tone(300))
        await stream.finalize()
        with pytest.raises(RateLimitError) as info:
            await next_event(stream)
        assert info.value.retry_after == 7.0
        await stream.close()
        fake.status = 503
        stream = await WhisperSTT(KEY, base_url=url).open()
        await feed(stream, tone(300))
        await stream.finalize()
        with pytest.raises(PatterConnectionError, match="503") as err:
            await next_event(stream)
        assert not isinstance(err.value, RateLimitError)
        await stream.close()


async def test_dropped_connection_is_connection_error() -> None:
    fake = FakeOpenAITranscribe(KEY, ["lost"], drop=True)
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(KEY, base_url=url).open()
        await feed(stream, tone(300))
        await stream.finalize()
        with pytest.raises(PatterConnectionError):
            await next_event(stream)
        await stream.close()


async def test_env_key_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    fake = FakeOpenAITranscribe("sk-from-env", ["hello"])
    async with serve(fake, "/v1") as url:
        stream = await WhisperSTT(base_url=url).open()
        await feed(stream, tone(300))
        await stream.finalize()
        assert await drain(stream) == [Transcript("hello", True, True)]


async def test_a_recogniser_that_raises_ends_the_stream_with_an_error_instead_of_hanging() -> None:
    """Local models can fail with any exception; the pipeline reading the stream must hear about it."""
    from getpatter.errors import PatterError
    from getpatter.stt._batch import BatchSTTStream

    async def broken(pcm: bytes) -> str:
        raise RuntimeError("model file is corrupt")

    stream = BatchSTTStream(broken, label="local whisper")
    loud = tone(1000, 16000)
    await stream.send(loud)
    await stream.finalize()
    with pytest.raises(PatterError, match="local whisper failed: RuntimeError"):
        await asyncio.wait_for(stream.__anext__(), 5)
    with pytest.raises(PatterError):
        await stream.send(loud)  # later calls report the failure too
    await stream.close()
