"""In-memory speech vendors for call-layer unit tests on virtual time.

They stand where the vendor is (behind the public ``STT`` / ``TTS`` provider interfaces), as the fake
servers do for whole-call tests, but without a socket: a test scripts what the vendor says and when it
fails, and reads back what it was sent. Nothing of the call layer is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from getpatter.audio.format import PCM16_16K
from getpatter.errors import PatterError
from getpatter.stt.base import STT, STTEvent, STTStream, Transcript
from getpatter.tts.base import TTS


class ScriptedSTTStream(STTStream):
    def __init__(self) -> None:
        self.audio = bytearray()
        self.finalizes = 0
        self.closed = False
        self._events: asyncio.Queue[STTEvent | PatterError | None] = asyncio.Queue()
        self.audio_seconds = 0.0

    async def send(self, audio: bytes) -> None:
        self.audio += audio

    async def finalize(self) -> None:
        self.finalizes += 1

    def say(self, text: str, *, final: bool = True, end_of_turn: bool = False) -> None:
        """The vendor recognised ``text``."""
        self._events.put_nowait(Transcript(text, is_final=final, end_of_turn=end_of_turn))

    def drop(self, error: PatterError) -> None:
        """The vendor's socket fails with ``error``."""
        self._events.put_nowait(error)

    def __aiter__(self) -> AsyncIterator[STTEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[STTEvent]:
        while (event := await self._events.get()) is not None:
            if isinstance(event, PatterError):
                raise event
            yield event

    async def close(self) -> None:
        self.closed = True
        self._events.put_nowait(None)


class ScriptedSTT(STT):
    """Each ``open()`` is a new :class:`ScriptedSTTStream` (kept in ``streams``)."""

    provider_id = "scripted"
    model = "scripted"
    input_format = PCM16_16K

    def __init__(self, *, vad_driven: bool = False) -> None:
        self.needs_vad_end_of_turn = vad_driven
        self.streams: list[ScriptedSTTStream] = []
        self.refuse: list[PatterError] = []  # errors the next open() calls raise, in order

    async def open(self) -> ScriptedSTTStream:
        if self.refuse:
            raise self.refuse.pop(0)
        stream = ScriptedSTTStream()
        self.streams.append(stream)
        return stream


class ScriptedTTS(TTS):
    """Synthesizes ``ms_per_char`` of silence per character, in 100 ms chunks. The next syntheses raise
    ``failures`` in order, each after ``fail_after_bytes`` of its audio."""

    provider_id = "scripted"
    model = "scripted"
    audio_format = PCM16_16K

    def __init__(self, *, ms_per_char: float = 10.0, fail_after_bytes: int = 0) -> None:
        self.ms_per_char = ms_per_char
        self.fail_after_bytes = fail_after_bytes
        self.failures: list[PatterError] = []
        self.requests: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.requests.append(text)
        audio = bytes(self.audio_format.bytes_for_ms(len(text) * self.ms_per_char))
        if self.failures:
            error = self.failures.pop(0)
            if self.fail_after_bytes:
                yield audio[: self.fail_after_bytes]
            raise error
        for i in range(0, len(audio), 3200):
            yield audio[i : i + 3200]
