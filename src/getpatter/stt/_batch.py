"""Batch recognition over an OpenAI-compatible ``POST {base}/audio/transcriptions`` (openai-rest.md s. 4).

Shared by :mod:`getpatter.stt.whisper` and :mod:`getpatter.stt.openai_transcribe`; the utterance stream
(:class:`BatchSTTStream`) also serves the offline Whisper in :mod:`getpatter.local`. The contract:

* ``needs_vad_end_of_turn`` is True: the stream only buffers PCM16 16 kHz until the pipeline's VAD says the
  caller stopped and calls :meth:`BatchSTTStream.finalize`. ``finalize`` returns at once (the pipeline
  cancels its end-of-turn task when the caller speaks again, so the upload must not live in it); the
  upload runs in a background task, uploads are answered strictly in order, and each yields exactly one
  ``Transcript(text, is_final=True, end_of_turn=True)`` -- with ``text=""`` when there was nothing to
  say (silence, a dropped hallucination, a duplicate).
* Leading silence beyond a short pre-roll is cut, and an utterance with no voiced audio at all is never
  uploaded (saves money and the most common Whisper hallucinations).
* ``audio_seconds`` counts the audio actually uploaded: that is what these APIs bill.
* Failures (401/403 -> AuthenticationError, 429 -> RateLimitError, 5xx/drops -> PatterConnectionError)
  end the iteration with that error; ``send``/``finalize`` raise it afterwards. The key never appears in
  messages or reprs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import wave
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx
import numpy as np
import orjson

from getpatter._channel import EventChannel
from getpatter._channel import StreamEnd as _End
from getpatter._pool import pooled_client
from getpatter.audio.format import PCM16_16K
from getpatter.errors import PatterConfigError, PatterError
from getpatter.llm._http import status_error, transport_error
from getpatter.stt.base import STT as BaseSTT
from getpatter.stt.base import STTEvent, STTStream, Transcript

__all__ = ["BatchSTTStream", "BatchTranscriptionSTT", "is_hallucination", "wav_bytes"]

log = logging.getLogger(__name__)

#: Frames louder than this count as voiced (telephone speech sits well above, line noise below).
VOICED_DBFS: Final = -50.0
#: Silence kept before the first voiced frame, so the first phoneme is not clipped.
PRE_ROLL_MS: Final = 300
_FRAME_MS: Final = 20
#: Phrases Whisper-family models invent from silence or noise; dropped whenever they are all that came back.
_ALWAYS_DROP: Final = frozenset(
    {
        "thanks for watching",
        "thank you for watching",
        "thanks for watching and ill see you next time",
        "please subscribe",
        "like and subscribe",
        "dont forget to like and subscribe",
        "subtitles by the amaraorg community",
        "subtitles by the amara org community",
        "see you in the next video",
    }
)
#: Phrases a caller may really say, so only dropped when the audio held almost no speech.
_DROP_IF_SHORT: Final = frozenset({"you", "thank you", "thanks", "thank you very much", "thank you so much"})
_NON_WORD = re.compile(r"[^\w\s]")


def _normalise(text: str) -> str:
    return " ".join(_NON_WORD.sub("", text.lower()).split())


def is_hallucination(text: str, voiced_s: float, *, min_speech_s: float = 0.4) -> bool:
    """True for a known filler hallucination: an outro phrase, or "you"/"thank you" on < ``min_speech_s``."""
    norm = _normalise(text)
    if not norm:
        return True
    return norm in _ALWAYS_DROP or (norm in _DROP_IF_SHORT and voiced_s < min_speech_s)


def wav_bytes(pcm: bytes, sample_rate: int = 16000) -> bytes:
    """Wrap PCM16 mono in a RIFF/WAVE header (the endpoint wants a file, not raw samples)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


def _trim_and_measure(pcm: bytes, rate: int) -> tuple[bytes, float]:
    """Cut leading silence down to the pre-roll; return ``(audio, voiced seconds)``; ``b""`` if no voice."""
    frame = rate * _FRAME_MS // 1000
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    n = len(samples) // frame
    if n == 0:
        return b"", 0.0
    frames = samples[: n * frame].astype(np.float64).reshape(n, frame)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    voiced = rms >= 32768.0 * 10 ** (VOICED_DBFS / 20)
    if not voiced.any():
        return b"", 0.0
    first = int(np.argmax(voiced))
    start = max(0, first - PRE_ROLL_MS // _FRAME_MS) * frame * 2
    return pcm[start : len(pcm) - len(pcm) % 2], float(voiced.sum()) * _FRAME_MS / 1000.0


class BatchTranscriptionSTT(BaseSTT):
    """Configuration shared by the OpenAI-compatible batch recognisers; subclasses set the class knobs."""

    needs_vad_end_of_turn = True
    input_format = PCM16_16K
    #: Shown in errors and reprs.
    vendor: str = ""
    env_var: str = "OPENAI_API_KEY"
    response_formats: tuple[str, ...] = ("json", "text")

    def __init__(
        self,
        api_key: str | None,
        *,
        language: str | None,
        model: str,
        response_format: str,
        base_url: str,
        prompt: str | None,
        temperature: float | None,
        timeout_s: float,
        drop_hallucinations: bool,
        dedupe_window_s: float,
        max_utterance_s: float,
    ) -> None:
        owner = type(self).__name__
        key = api_key if api_key is not None else os.environ.get(self.env_var, "")
        if not key.strip():
            raise PatterConfigError(
                f"{owner} needs an API key: pass api_key=... or set the {self.env_var} environment variable."
            )
        if not model:
            raise PatterConfigError(f"{owner} model must be a non-empty model name.")
        if response_format not in self.response_formats:
            raise PatterConfigError(
                f"{owner} response_format={response_format!r} is not supported for model {model!r}; "
                f"use one of {list(self.response_formats)}."
            )
        if language is not None and not re.fullmatch(r"[a-z]{2}", language):
            raise PatterConfigError(f"{owner} language={language!r} must be an ISO-639-1 code like 'en'.")
        if temperature is not None and not 0.0 <= temperature <= 1.0:
            raise PatterConfigError(f"{owner} temperature={temperature!r} must be between 0 and 1.")
        for name, value in (("timeout_s", timeout_s), ("max_utterance_s", max_utterance_s)):
            if value <= 0:
                raise PatterConfigError(f"{owner} {name}={value!r} must be > 0 seconds.")
        if dedupe_window_s < 0:
            raise PatterConfigError(f"{owner} dedupe_window_s={dedupe_window_s!r} must be >= 0.")
        if not base_url.startswith(("http://", "https://")):
            raise PatterConfigError(
                f"{owner} base_url must start with http:// or https:// (got {base_url!r})."
            )
        self._api_key = key.strip()
        self.model = model
        self.language = language
        self.response_format = response_format
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/audio/transcriptions"
        self.prompt = prompt
        self.temperature = temperature
        self.timeout_s = timeout_s
        self.drop_hallucinations = drop_hallucinations
        self.dedupe_window_s = dedupe_window_s
        self.max_utterance_s = max_utterance_s

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, language={self.language!r}, "
            f"response_format={self.response_format!r}, base_url={self.base_url!r})"
        )

    def form_fields(self) -> dict[str, str]:
        """The multipart text fields, in wire order; only what is set."""
        fields = {"model": self.model, "response_format": self.response_format}
        if self.language:
            fields["language"] = self.language
        if self.prompt:
            fields["prompt"] = self.prompt
        if self.temperature is not None:
            fields["temperature"] = f"{self.temperature:g}"
        return fields

    async def open(self) -> BatchSTTStream:
        """No connection is made up front: the first upload opens (and then keeps alive) one HTTP client."""
        client = pooled_client(timeout=httpx.Timeout(self.timeout_s))

        async def upload(pcm: bytes) -> str:
            return await self.transcribe(client, wav_bytes(pcm, self.input_format.sample_rate))

        return BatchSTTStream(
            upload,
            label=self.vendor,
            sample_rate=self.input_format.sample_rate,
            max_utterance_s=self.max_utterance_s,
            drop_hallucinations=self.drop_hallucinations,
            dedupe_window_s=self.dedupe_window_s,
            on_close=client.aclose,
        )

    async def transcribe(self, client: httpx.AsyncClient, wav: bytes) -> str:
        """POST one WAV file; return the recognised text (stripped)."""
        secrets = (self._api_key,)
        try:
            response = await client.post(
                self.url,
                headers={"Authorization": f"Bearer {self._api_key}"},
                data=self.form_fields(),
                files={"file": ("utterance.wav", wav, "audio/wav")},
            )
        except httpx.HTTPError as exc:
            raise transport_error(self.vendor, exc, secrets=secrets) from None
        if response.status_code >= 300:
            raise status_error(
                self.vendor, response.status_code, response.headers, response.content, secrets=secrets
            )
        if self.response_format == "text":
            return response.text.strip()
        try:
            doc: Any = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise PatterError(f"{self.vendor} returned a body that is not JSON.") from None
        text = doc.get("text") if isinstance(doc, dict) else None
        if not isinstance(text, str):
            raise PatterError(f"{self.vendor} returned JSON without a 'text' field.")
        return text.strip()


class BatchSTTStream(STTStream):
    """One call's caller audio; each :meth:`finalize` hands it to ``recognise`` and queues one final.

    ``recognise`` turns trimmed PCM16 mono audio into text (an HTTP upload, a local decode); calls run one
    at a time, in finalize order, in a task of their own so cancelling the caller of ``finalize`` never
    loses an utterance. ``on_close`` releases what ``recognise`` holds (an HTTP client).
    """

    def __init__(
        self,
        recognise: Callable[[bytes], Awaitable[str]],
        *,
        label: str,
        sample_rate: int = 16000,
        max_utterance_s: float = 30.0,
        drop_hallucinations: bool = True,
        dedupe_window_s: float = 0.0,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.audio_seconds = 0.0
        self._recognise = recognise
        self._label = label
        self._rate = sample_rate
        self._max_bytes = int(max_utterance_s * sample_rate) * 2
        self._drop_hallucinations = drop_hallucinations
        self._dedupe_window_s = dedupe_window_s
        self._on_close = on_close
        self._buffer = bytearray()
        self._events: EventChannel[STTEvent] = EventChannel()
        self._loop = asyncio.get_running_loop()
        self._tail: asyncio.Task[None] | None = None
        self._failure: PatterError | None = None
        self._closing = False
        self._close_done: asyncio.Future[None] | None = None
        self._last_final: tuple[str, float] | None = None

    def __repr__(self) -> str:
        return f"BatchSTTStream({self._label}, buffered_bytes={len(self._buffer)})"

    async def send(self, audio: bytes) -> None:
        """Buffer PCM16 16 kHz; keeps only the newest ``max_utterance_s``. A no-op after :meth:`close`."""
        if self._closing:
            return
        if self._failure is not None:
            raise self._failure
        self._buffer += audio
        excess = len(self._buffer) - self._max_bytes
        if excess > 0:
            del self._buffer[: excess + excess % 2]

    async def finalize(self) -> None:
        """Hand the buffered utterance to the uploader and return; its Transcript arrives via iteration."""
        if self._closing:
            return
        if self._failure is not None:
            raise self._failure
        self._submit()

    def _submit(self) -> None:
        pcm = bytes(self._buffer)
        self._buffer.clear()
        previous = self._tail
        self._tail = asyncio.create_task(self._upload(pcm, previous), name="batch-stt-upload")

    async def _upload(self, pcm: bytes, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if self._failure is not None:
            return
        audio, voiced_s = _trim_and_measure(pcm, self._rate)
        text = ""
        if audio:
            self.audio_seconds += len(audio) / (2 * self._rate)
            try:
                text = await self._recognise(audio)
            except Exception as exc:  # a local model may raise anything; the reader must not wait forever
                if isinstance(exc, PatterError):
                    failure = exc
                else:
                    log.error("%s: recognition failed", self._label, exc_info=exc)
                    failure = PatterError(f"{self._label} failed: {exc!r}")
                self._failure = failure
                self._events.put_nowait(_End(failure))
                return
        self._events.put_nowait(Transcript(self._filter(text, voiced_s), is_final=True, end_of_turn=True))

    def _filter(self, text: str, voiced_s: float) -> str:
        if not text:
            return ""
        if self._drop_hallucinations and is_hallucination(text, voiced_s):
            log.debug("%s: dropped a likely hallucination (%.2f s voiced)", self._label, voiced_s)
            return ""
        now = self._loop.time()
        norm = _normalise(text)
        last = self._last_final
        if last is not None and last[0] == norm and now - last[1] < self._dedupe_window_s:
            log.debug("%s: dropped a duplicate final", self._label)
            return ""
        self._last_final = (norm, now)
        return text

    def __aiter__(self) -> BatchSTTStream:
        return self

    async def __anext__(self) -> STTEvent:
        """Next final; raises the stream's error once if an upload failed, then stops."""
        return await self._events.next()

    async def close(self) -> None:
        """Upload what is still buffered (if voiced), wait for pending uploads, end iteration. Idempotent."""
        if self._close_done is not None:
            await asyncio.shield(self._close_done)
            return
        self._close_done = self._loop.create_future()
        try:
            if self._failure is None and _trim_and_measure(bytes(self._buffer), self._rate)[0]:
                self._submit()
            self._closing = True
            self._buffer.clear()
            if self._tail is not None:
                with contextlib.suppress(Exception):
                    await self._tail
            if self._failure is None:
                self._events.put_nowait(_End(None))
            if self._on_close is not None:
                await self._on_close()
        finally:
            self._close_done.set_result(None)
