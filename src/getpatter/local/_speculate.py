"""Start the Whisper decode while the end-of-turn silence is still running, not after it.

The pipeline's VAD calls a turn over only after ``min_silence_ms`` of quiet (about half a second), and a
batch recogniser then starts from zero. :class:`SpeculativeStream` watches the same audio: once the
caller has been quiet for ``after_silence_ms`` it decodes what it has, in the background. When the turn
is handed over and the audio is that snapshot plus nothing but silence, the speculative text is the
answer (the decode would have seen the same speech), so the wait after the VAD's verdict shrinks to
whatever the decode had left. If the caller spoke again, the snapshot no longer matches and the turn is
decoded as usual: speculation can cost an unused decode, never a different transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final

import numpy as np

from getpatter.stt._batch import VOICED_DBFS, BatchSTTStream, _trim_and_measure

_RATE: Final = 16000
_BYTES_PER_MS: Final = _RATE * 2 // 1000
_VOICED_MEAN_SQUARE: Final = (32768.0 * 10 ** (VOICED_DBFS / 20)) ** 2
#: Snapshots kept for turns handed over but not yet decoded (each is at most one turn of audio).
_KEEP: Final = 3


def _voiced(pcm: bytes) -> bool:
    """Same gate as the batch stream's trimming: mean level at or above ``VOICED_DBFS``."""
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float32)
    return samples.size > 0 and float(np.dot(samples, samples)) / samples.size >= _VOICED_MEAN_SQUARE


class SpeculativeStream(BatchSTTStream):
    """A :class:`BatchSTTStream` (PCM16 16 kHz) that decodes early during the caller's silence."""

    def __init__(
        self,
        decode: Callable[[bytes], Coroutine[Any, Any, str]],
        *,
        after_silence_ms: float,
        label: str,
        max_utterance_s: float,
    ) -> None:
        super().__init__(self._recognise, label=label, max_utterance_s=max_utterance_s)
        self._decode = decode
        self._after_bytes = int(after_silence_ms * _BYTES_PER_MS)
        self._silent_tail = 0  # bytes of unvoiced audio at the end of the buffer
        self._armed = False  # voice arrived since the last speculative decode
        self._guesses: deque[tuple[bytes, asyncio.Task[str]]] = deque(maxlen=_KEEP)
        self.reused = 0  # turns answered by a speculative decode (for tests and benchmarks)

    async def send(self, audio: bytes) -> None:
        await super().send(audio)
        if self._closing:
            return
        if _voiced(audio):
            self._silent_tail = 0
            self._armed = True
            return
        self._silent_tail += len(audio)
        if self._armed and self._silent_tail >= self._after_bytes:
            self._armed = False
            snapshot, _ = _trim_and_measure(bytes(self._buffer), _RATE)
            if snapshot:
                task = asyncio.create_task(self._decode(snapshot), name="stt-speculative-decode")
                task.add_done_callback(_consume)
                self._guesses.append((snapshot, task))

    def _submit(self) -> None:
        super()._submit()
        self._silent_tail = 0
        self._armed = False

    async def _recognise(self, audio: bytes) -> str:
        """The speculative text if ``audio`` is a snapshot plus silence; otherwise a fresh decode."""
        for snapshot, task in self._guesses:
            if audio.startswith(snapshot) and not _trim_and_measure(audio[len(snapshot) :], _RATE)[0]:
                self._guesses.remove((snapshot, task))
                with contextlib.suppress(Exception):  # a failed guess: decode again below
                    text = await task
                    self.reused += 1
                    return text
                break
        return await self._decode(audio)

    async def close(self) -> None:
        await super().close()
        for _, task in self._guesses:
            task.cancel()
        self._guesses.clear()


def _consume(task: asyncio.Task[str]) -> None:
    """Unused guesses may fail (or be cancelled) unobserved; that is fine, but not worth a warning."""
    if not task.cancelled():
        task.exception()
