"""Sentences in, carrier audio out: TTS -> hooks -> one conversion to the wire format -> playout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol

from getpatter.audio.convert import FormatConverter
from getpatter.audio.format import AudioFormat
from getpatter.call.clock import SYSTEM_CLOCK, Clock
from getpatter.call.playout import Playout
from getpatter.call.retry import SPEAKER_RETRY, RetryPolicy
from getpatter.errors import PatterConnectionError, PatterError
from getpatter.tts.base import TTS


class SynthesisHooks(Protocol):
    async def before_synthesize(self, sentence: str) -> str | None: ...

    async def after_synthesize(self, chunk: bytes) -> bytes | None: ...


class Speaker:
    def __init__(
        self,
        tts: TTS,
        playout: Playout,
        wire_format: AudioFormat,
        hooks: SynthesisHooks | None = None,
        *,
        stall_timeout_s: float = 8.0,
        retry: RetryPolicy = SPEAKER_RETRY,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._tts = tts
        self._playout = playout
        self._wire = wire_format
        self._hooks = hooks
        self.characters = 0  # billed characters, all utterances of the call
        self.first_byte_at: float | None = None  # monotonic, first TTS byte of the current utterance
        self.bytes_pushed = 0  # audio handed to the playout, all utterances
        self.stall_timeout_s = stall_timeout_s
        self._retry = retry
        self._clock = clock

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
        converter = FormatConverter(self._tts.audio_format, self._wire)
        playout.begin_segment(text)
        self.characters += len(text)
        async with contextlib.aclosing(self._tts.synthesize(text)) as audio:  # type: ignore[type-var]
            while True:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                    # races with a chunk arriving, and a barge-in must always stop the reply.
                    async with asyncio.timeout(self.stall_timeout_s):
                        chunk = await anext(audio)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise PatterConnectionError(
                        f"{self._tts.provider_id} TTS stalled for {self.stall_timeout_s:.0f} s"
                    ) from None
                if self.first_byte_at is None:
                    self.first_byte_at = self._clock.now()
                piece: bytes | None = chunk
                if self._hooks is not None:
                    piece = await self._hooks.after_synthesize(chunk)
                if piece:
                    out = converter.process(piece)
                    self.bytes_pushed += len(out)
                    playout.push(out)
        playout.push(converter.flush())
        playout.end_segment()

    async def say_with_retry(self, sentence: str, on_error: Callable[[PatterError, bool], None]) -> bool:
        """Speak a sentence, retried (the speaker's :class:`RetryPolicy`) while the TTS fails before any of
        its audio was queued; ``on_error(exc, retrying)`` hears of each failure.

        Returns False when TTS is still failing (the caller decides what a mute agent does).
        """
        attempt = 0
        while True:
            attempt += 1
            before = self.bytes_pushed
            try:
                await self.say(sentence)
                return True
            except PatterError as exc:
                again = self._retry.should_retry(attempt, exc)
                on_error(exc, again)
                self._playout.end_segment()
                if self.bytes_pushed != before:
                    return True  # part of it was heard; repeating it would be worse than moving on
                if not again:
                    return False
                if wait := self._retry.wait_s(attempt, exc):
                    await self._clock.sleep(wait)  # a 429's Retry-After
