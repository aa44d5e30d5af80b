"""Caller turns from transcripts: what the caller said, and when they have finished saying it.

Recognisers end turns in one of two ways:

* **Streaming STTs** (Deepgram, AssemblyAI, ...) mark ``end_of_turn`` themselves. When one stays silent
  after our VAD heard the caller stop, we ask it to finalize and commit what we have ``fallback_ms`` later.
* **VAD-driven STTs** (``needs_vad_end_of_turn``: batch Whisper, local Whisper, Cartesia) transcribe when
  our VAD says the caller stopped, and answer each ``finalize()`` with exactly one end-of-turn final. A
  caller who starts talking again before that final is back has not finished: the text is held and joins
  the next one, so the agent answers the whole sentence rather than its first half.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from getpatter.audio.vad import VoiceActivity
from getpatter.call.clock import SYSTEM_CLOCK, Clock
from getpatter.call.stt_link import ResilientSTTStream
from getpatter.call.tasks import BackgroundTasks
from getpatter.stt.base import Transcript

#: After asking a silent streaming STT to finalize, how long its last words get to arrive.
FINALIZE_GRACE_S = 0.3
#: When words are still interim at that moment, the most we wait for the final that carries them: it is
#: committed as soon as it arrives, and a vendor slower than this costs the caller a half-heard turn.
FINALIZE_WAIT_S = 1.5


class TurnAssembler:
    def __init__(
        self,
        *,
        stream: ResilientSTTStream,
        vad: VoiceActivity,
        vad_driven: bool,
        fallback_ms: int,
        commit: Callable[[str], Awaitable[None]],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._stream = stream
        self._vad = vad
        self._vad_driven = vad_driven
        self._fallback_s = fallback_ms / 1000.0
        self._commit = commit
        self._finals: list[str] = []
        self._interim = ""
        self._fallback: asyncio.Task[None] | None = None
        self._finalizing = BackgroundTasks()
        self._awaiting = 0  # VAD-driven finalizes whose final has not come back yet
        self._final_seen = asyncio.Event()  # a final arrived since the fallback asked for one

    def speech_started(self) -> None:
        if self._fallback is not None:
            self._fallback.cancel()
            self._fallback = None

    def speech_ended(self) -> None:
        if self._vad_driven:
            # Its own task, never cancelled by new speech: the utterance it hands over must not be lost.
            self._finalizing.spawn(self._finalize(), "stt-finalize")
        elif self._fallback is None or self._fallback.done():
            self._fallback = asyncio.create_task(self._commit_after_silence(), name="turn-fallback")

    def stt_restarted(self) -> None:
        """The STT stream was replaced: finals asked of the old one will never come."""
        self._awaiting = 0

    async def on_transcript(self, t: Transcript) -> None:
        if t.is_final:
            self._final_seen.set()
        if t.is_final and t.text.strip():
            self._finals.append(t.text.strip())
            self._interim = ""
        elif t.text.strip():
            self._interim = t.text.strip()
        if not t.end_of_turn:
            return
        if self._vad_driven:
            self._awaiting = max(0, self._awaiting - 1)
            if self._awaiting or self._vad.speaking:
                return  # the caller went on: this text opens the next final's turn
        await self._commit_pending()

    async def close(self) -> None:
        tasks = [t for t in (self._fallback, *self._finalizing) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def _finalize(self) -> None:
        self._awaiting += 1
        if not await self._stream.finalize_turn():
            self._awaiting = max(0, self._awaiting - 1)

    async def _commit_after_silence(self) -> None:
        await self._clock.sleep(self._fallback_s)
        if not (self._finals or self._interim):
            return
        self._final_seen.clear()
        await self._stream.finalize()
        if self._interim:
            # Heard but not final yet: answering the interim now would answer half a sentence and turn
            # the late final into a second turn. Wait for the final (bounded), not a fixed grace.
            await self._clock.wait_for(self._final_seen, FINALIZE_WAIT_S)
        else:
            await self._clock.sleep(FINALIZE_GRACE_S)
        await self._commit_pending()

    async def _commit_pending(self) -> None:
        text = " ".join(self._finals) or self._interim
        self._finals.clear()
        self._interim = ""
        if text.strip():
            await self._commit(text.strip())
