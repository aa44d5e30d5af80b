"""Sentences in, carrier audio out: TTS -> hooks -> one conversion to the wire format -> playout."""

from __future__ import annotations

import contextlib
import time
from typing import Protocol

from getpatter.audio.convert import FormatConverter
from getpatter.audio.format import AudioFormat
from getpatter.call.playout import Playout
from getpatter.tts.base import TTS


class SynthesisHooks(Protocol):
    async def before_synthesize(self, sentence: str) -> str | None: ...

    async def after_synthesize(self, chunk: bytes) -> bytes | None: ...


class Speaker:
    def __init__(
        self, tts: TTS, playout: Playout, wire_format: AudioFormat, hooks: SynthesisHooks | None = None
    ) -> None:
        self._tts = tts
        self._playout = playout
        self._wire = wire_format
        self._hooks = hooks
        self.characters = 0  # billed characters, all utterances of the call
        self.first_byte_at: float | None = None  # monotonic, first TTS byte of the current utterance

    def new_utterance(self) -> None:
        self.first_byte_at = None

    async def say(self, sentence: str) -> None:
        """Synthesize one sentence into its own playout segment (so its mark tells when it was heard)."""
        text: str | None = sentence
        if self._hooks is not None:
            text = await self._hooks.before_synthesize(sentence)
        if not text or not text.strip():
            return
        playout = self._playout
        converter = FormatConverter(self._tts.output_format, self._wire)
        playout.begin_segment(text)
        self.characters += len(text)
        async with contextlib.aclosing(self._tts.synthesize(text)) as audio:  # type: ignore[type-var]
            async for chunk in audio:
                if self.first_byte_at is None:
                    self.first_byte_at = time.monotonic()
                piece: bytes | None = chunk
                if self._hooks is not None:
                    piece = await self._hooks.after_synthesize(chunk)
                if piece:
                    playout.push(converter.process(piece))
        playout.push(converter.flush())
        playout.end_segment()
