"""Paced agent audio to the carrier, with marks, so we always know what the caller actually heard.

Audio is sent just in time: never more than ``lead_ms`` (160 ms) ahead of what the carrier is playing.
That keeps the carrier's buffer short (barge-in stops fast even before ``clear`` lands) and lets marks
locate the playback position, while a stall of the event loop (or of the network) shorter than the lead
is not heard: at 100 realtime calls on a busy 2-core machine, 160 ms gave 117-138 gaps where 80 ms gave
337-614 (``benchmarks/RESULTS.md``).

Each text *segment* (a sentence) ends with a mark; when the carrier echoes it, that segment was heard.
On barge-in, pending marks are written off before ``clear`` is sent, because the carrier echoes cleared
marks too and the echo cannot tell them apart.

With background audio (:class:`~getpatter.audio.background.BackgroundMixer`) the ambience is mixed into
every agent chunk, and the silences are filled with ambience-only chunks at the same just-in-time pace, so
the carrier never runs dry. Ambience chunks carry no text and no marks and are not counted as the
utterance's audio, so heard-text accounting and barge-in are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from getpatter.call.clock import SYSTEM_CLOCK, Clock
from getpatter.carriers.base import MediaCodec

if TYPE_CHECKING:
    from getpatter.audio.background import BackgroundMixer

log = logging.getLogger("getpatter.playout")

Sender = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class _Segment:
    mark: str
    text: str
    start: int  # byte offset in the utterance's audio where this segment starts
    end: int = 0
    closed: bool = False  # all its audio is queued
    heard: bool = False


@dataclass(slots=True)
class HeardReport:
    """What the caller heard of the current utterance when playback was stopped."""

    text: str
    heard_ms: float
    full_text: str
    first_audio_sent: float | None = None
    stopped_at: float = field(default_factory=time.monotonic)


class Playout:
    def __init__(
        self,
        codec: MediaCodec,
        send: Sender,
        *,
        lead_ms: float = 160.0,
        chunk_ms: int = 60,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self._codec = codec
        self._send = send
        self._lead_s = lead_ms / 1000.0
        self._chunk_bytes = codec.wire_format.bytes_for_ms(chunk_ms)
        self._bytes_per_s = float(codec.wire_format.bytes_for_ms(1000))
        self._buffer = bytearray()  # queued, not yet sent
        self._segments: deque[_Segment] = deque()
        self._marks_in_flight: dict[str, _Segment] = {}
        self._written_off: set[str] = set()
        self._queued = 0  # bytes of the current utterance queued so far
        self._sent = 0  # bytes of the current utterance sent so far
        self._heard = 0  # bytes confirmed played (end of the last echoed segment)
        self._last_echo = 0.0
        self._deadline = 0.0  # monotonic time when everything sent so far has finished playing
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.first_audio_sent: float | None = None
        self.last_audio_sent: float | None = None
        self._background: BackgroundMixer | None = None

    # -- producer side -------------------------------------------------------------------------------
    def start(self, background: BackgroundMixer | None = None) -> None:
        """Begin pacing; ``background`` (ambience for the whole call) starts playing at once."""
        self._background = background
        if self._task is None:
            self._task = asyncio.create_task(self._pace(), name="playout")

    def begin_segment(self, text: str) -> None:
        """Start a text segment; its audio follows with :meth:`push`, then :meth:`end_segment`."""
        self.end_segment()
        self._segments.append(_Segment(mark=f"seg-{next(self._ids)}", text=text, start=self._queued))
        self._idle.clear()

    def push(self, wire_audio: bytes) -> None:
        if not wire_audio or self._closed:
            return
        if not self._segments or self._segments[-1].closed:
            self.begin_segment("")
        self._buffer += wire_audio
        self._queued += len(wire_audio)
        self._wake.set()

    def end_segment(self) -> None:
        if self._segments and not self._segments[-1].closed:
            seg = self._segments[-1]
            seg.closed = True
            seg.end = self._queued
            self._wake.set()

    # -- state ---------------------------------------------------------------------------------------
    @property
    def speaking(self) -> bool:
        """True while any queued agent audio has not been confirmed played."""
        return not self._idle.is_set()

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every segment has been heard (mark echoed) or cleared."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    @property
    def queued_ms(self) -> float:
        """Milliseconds of audio queued so far in the current utterance (where the next audio starts)."""
        return self._queued / self._bytes_per_s * 1000.0

    def heard_ms(self) -> float:
        """Milliseconds of the current utterance the caller has heard: up to the last echoed mark, plus
        the time played since (bounded by what was sent)."""
        heard = float(self._heard)
        if self.first_audio_sent is not None:
            since = self._clock.now() - max(self._last_echo, self.first_audio_sent)
            heard = min(float(self._sent), heard + since * self._bytes_per_s)
        return heard / self._bytes_per_s * 1000.0

    def heard_text(self) -> str:
        return " ".join(s.text for s in self._segments if s.heard and s.text).strip()

    def full_text(self) -> str:
        return " ".join(s.text for s in self._segments if s.text).strip()

    # -- carrier side --------------------------------------------------------------------------------
    def on_mark(self, name: str) -> None:
        """Call with every mark the carrier echoes."""
        if name in self._written_off:
            self._written_off.discard(name)
            return
        seg = self._marks_in_flight.pop(name, None)
        if seg is None:
            return
        seg.heard = True
        self._last_echo = self._clock.now()
        self._heard = max(self._heard, seg.end)
        self._check_idle()

    async def interrupt(self) -> HeardReport:
        """Barge-in: stop sending, write off pending marks, ``clear`` the carrier, report what was heard."""
        heard_ms = self.heard_ms()
        full_text = self.full_text()
        first_audio = self.first_audio_sent
        heard = self._partial_heard_text(heard_ms / 1000.0 * self._bytes_per_s)
        had_audio = self._sent > 0
        self._buffer.clear()
        self._written_off.update(self._marks_in_flight)
        self._marks_in_flight.clear()
        self._reset_utterance()
        if had_audio or self._background is not None:
            self._deadline = 0.0  # the carrier's buffer is about to be emptied
            with contextlib.suppress(Exception):
                await self._send(self._codec.clear())
        return HeardReport(
            text=heard,
            heard_ms=heard_ms,
            full_text=full_text,
            first_audio_sent=first_audio,
            stopped_at=self._clock.now(),
        )

    def finish_utterance(self) -> tuple[str, str]:
        """After :meth:`wait_idle`: return (heard text, full text) and start a fresh utterance."""
        heard, full = self.heard_text(), self.full_text()
        self._reset_utterance()
        return heard, full

    def _partial_heard_text(self, heard_bytes: float) -> str:
        """Whole heard segments, plus the share of words of the segment playing when we stopped."""
        words: list[str] = []
        for seg in self._segments:
            if seg.heard:
                if seg.text:
                    words.append(seg.text)
                continue
            end = seg.end if seg.closed else self._queued
            if seg.text and end > seg.start and heard_bytes > seg.start:
                tokens = seg.text.split()
                n = int(len(tokens) * min(1.0, (heard_bytes - seg.start) / (end - seg.start)))
                words.extend(tokens[:n])
            break
        return " ".join(words).strip()

    def _reset_utterance(self) -> None:
        self._segments.clear()
        self._queued = self._sent = self._heard = 0
        self._last_echo = 0.0
        self.first_audio_sent = None
        self._idle.set()

    def _check_idle(self) -> None:
        if not self._buffer and all(s.heard for s in self._segments):
            self._idle.set()

    async def close(self) -> None:
        self._closed = True
        self._idle.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- pacing loop ---------------------------------------------------------------------------------
    def _next_boundary(self) -> int | None:
        """End offset of the first closed segment whose mark is not yet sent."""
        for seg in self._segments:
            if seg.heard or seg.mark in self._marks_in_flight:
                continue
            return seg.end if seg.closed else None
        return None

    async def _pace(self) -> None:
        try:
            while not self._closed:
                await self._send_due_marks()
                if not self._buffer:
                    if self._background is None or self._background.finished:
                        self._wake.clear()
                        await self._wake.wait()
                    else:
                        await self._fill_silence()
                    continue
                now = self._clock.now()
                ahead = self._deadline - now
                if ahead > self._lead_s:
                    await self._clock.sleep(ahead - self._lead_s)
                    continue
                size = self._chunk_bytes
                boundary = self._next_boundary()
                if boundary is not None and boundary > self._sent:
                    size = min(size, boundary - self._sent)
                chunk = bytes(self._buffer[:size])
                del self._buffer[:size]
                self._sent += len(chunk)
                self._deadline = max(self._deadline, now) + len(chunk) / self._bytes_per_s
                if self._background is not None:
                    chunk = self._background.mix(chunk)
                await self._send(self._codec.audio(chunk))
                self.last_audio_sent = self._clock.now()
                if self.first_audio_sent is None:
                    self.first_audio_sent = self.last_audio_sent
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("playout stopped: carrier socket gone", exc_info=True)

    async def _fill_silence(self) -> None:
        """No agent audio queued: send one ambience chunk when due, or wait for that (or agent audio)."""
        assert self._background is not None
        now = self._clock.now()
        ahead = self._deadline - now
        if ahead > self._lead_s:
            self._wake.clear()
            await self._clock.wait_for(self._wake, ahead - self._lead_s)
            return
        chunk = self._background.fill(self._chunk_bytes)
        self._deadline = max(self._deadline, now) + len(chunk) / self._bytes_per_s
        await self._send(self._codec.audio(chunk))

    async def _send_due_marks(self) -> None:
        """Send the mark of every closed segment whose audio has all been sent (in order)."""
        for seg in list(self._segments):
            if seg.heard or seg.mark in self._marks_in_flight:
                continue
            if not seg.closed or seg.end > self._sent:
                break
            self._marks_in_flight[seg.mark] = seg
            await self._send(self._codec.mark(seg.mark))
