"""OpenAITranscribeSTT against the strict fake transcription endpoint, plus the fake's own strictness."""

from __future__ import annotations

import asyncio
import io
import wave
from typing import Any

import httpx
import pytest

from getpatter.errors import AuthenticationError, PatterConfigError, PatterError
from getpatter.stt import openai_transcribe
from getpatter.stt.base import Transcript
from getpatter.stt.openai_transcribe import OpenAITranscribeSTT
from tests.fakes._segmenter import silence, tone, wav_pcm16
from tests.fakes.openai_transcribe import FakeOpenAITranscribe
from tests.unit._stt_stream import drain, serve

KEY = "sk-transcribe-test"


async def say(stream: Any, audio: bytes) -> None:
    for i in range(0, len(audio), 640):
        await stream.send(audio[i : i + 640])
    await stream.finalize()


def test_defaults_env_and_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="OPENAI_API_KEY"):
        OpenAITranscribeSTT()
    stt = OpenAITranscribeSTT("sk-hidden")
    assert (stt.provider_id, stt.model, stt.language, stt.response_format) == (
        "openai_transcribe",
        "gpt-4o-transcribe",
        None,
        "json",
    )
    assert stt.needs_vad_end_of_turn and "sk-hidden" not in repr(stt)
    assert openai_transcribe.STT is OpenAITranscribeSTT


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"response_format": "verbose_json"}, "response_format"), ({"model": "whisper-1"}, "model")],
)
def test_refuses_what_gpt4o_models_do_not_take(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(PatterConfigError, match=name):
        OpenAITranscribeSTT(KEY, **kwargs)


async def test_fields_are_sent_exactly_and_language_omitted_when_none() -> None:
    fake = FakeOpenAITranscribe(KEY, ["reschedule my delivery"])
    async with serve(fake, "/v1") as url:
        stream = await OpenAITranscribeSTT(KEY, base_url=url, prompt="Acme Corp deliveries").open()
        await say(stream, tone(500) + silence(100))
        assert await drain(stream) == [Transcript("reschedule my delivery", True, True)]
    (upload,) = fake.uploads
    assert [p.name for p in upload.parts] == ["model", "response_format", "prompt", "file"]
    assert upload.fields == {
        "model": "gpt-4o-transcribe",
        "response_format": "json",
        "prompt": "Acme Corp deliveries",
    }
    assert upload.headers["authorization"] == f"Bearer {KEY}"
    assert wav_pcm16(upload.file.data)[:3] == (1, 2, 16000)
    assert stream.audio_seconds == pytest.approx(0.6)


async def test_mini_model_text_format_and_language() -> None:
    fake = FakeOpenAITranscribe(KEY, ["hola"])
    async with serve(fake, "/v1") as url:
        stt = OpenAITranscribeSTT(
            KEY, language="es", model="gpt-4o-mini-transcribe", response_format="text", base_url=url
        )
        stream = await stt.open()
        await say(stream, tone(400))
        assert await drain(stream) == [Transcript("hola", True, True)]
    assert fake.uploads[0].fields == {
        "model": "gpt-4o-mini-transcribe",
        "response_format": "text",
        "language": "es",
    }


async def test_bad_request_is_a_provider_error_naming_the_vendor_text() -> None:
    fake = FakeOpenAITranscribe(KEY, ["x"])
    async with serve(fake, "/v1") as url:
        stream = await OpenAITranscribeSTT(
            KEY, model="gpt-5-transcribe", base_url=url, allow_unlisted_model=True
        ).open()
        await say(stream, tone(300))
        with pytest.raises(PatterError, match="Invalid model") as info:
            async with asyncio.timeout(5):
                await stream.__anext__()
        assert info.value.code == "PROVIDER_ERROR" and not isinstance(info.value, AuthenticationError)
        await stream.close()


async def test_fake_refuses_what_openai_refuses() -> None:
    fake = FakeOpenAITranscribe(KEY)
    wav = _wav(tone(100))
    good = {"model": "gpt-4o-transcribe"}
    file = {"file": ("a.wav", wav, "audio/wav")}
    async with serve(fake, "/v1") as url, httpx.AsyncClient() as client:
        endpoint = url + "/audio/transcriptions"
        auth = {"Authorization": f"Bearer {KEY}"}
        cases: list[tuple[dict[str, str], dict[str, str], Any, int]] = [
            ({"Authorization": KEY}, good, file, 401),
            (auth, good, None, 400),  # no file part
            (auth, {}, file, 400),  # no model
            (auth, {**good, "response_format": "verbose_json"}, file, 400),
            (auth, {**good, "language": "eng"}, file, 400),
            (auth, {**good, "speed": "1"}, file, 400),
            (auth, good, {"file": ("a.wav", b"RIFFnope", "audio/wav")}, 400),
        ]
        for headers, data, files, status in cases:
            if files is None:
                response = await client.post(endpoint, headers=headers, data=data, files={"x": ("y", b"z")})
            else:
                response = await client.post(endpoint, headers=headers, data=data, files=files)
            assert response.status_code == status, (data, files)
            assert response.json()["error"]["message"]
        raw = await client.post(endpoint, headers={**auth, "Content-Type": "application/json"}, content=b"{}")
        assert raw.status_code == 400
        ok = await client.post(endpoint, headers=auth, data=good, files=file)
        assert ok.status_code == 200 and ok.json()["usage"]["type"] == "tokens"


def _wav(pcm: bytes) -> bytes:
    """Built with stdlib ``wave`` so the fake is exercised independently of getpatter's WAV writer."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return buf.getvalue()


def test_model_is_checked_against_the_documented_models_with_an_escape_hatch() -> None:
    from getpatter import PatterConfigError

    with pytest.raises(PatterConfigError, match="gpt-4o-transcribe, gpt-4o-mini-transcribe") as info:
        OpenAITranscribeSTT(KEY, model="gpt-4o-transcrib")
    assert "allow_unlisted_model=True" in str(info.value)
    assert OpenAITranscribeSTT(KEY, model="gpt-4o-mini-transcribe").model == "gpt-4o-mini-transcribe"
    assert (
        OpenAITranscribeSTT(KEY, model="gpt-5-transcribe", allow_unlisted_model=True).model
        == "gpt-5-transcribe"
    )
