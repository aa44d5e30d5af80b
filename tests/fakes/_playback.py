"""A carrier's playback buffer, as both fake carriers model it (twilio.md §3.3, telnyx.md §5).

Each outbound ``media`` payload plays after whatever is already queued, at ``bytes_per_second`` of wall
time. A ``mark`` is echoed when playback reaches it (at once if nothing is buffered or waiting); ``clear``
cuts everything not yet played and echoes every pending mark at once. The echo itself is the carrier's
message, sent through ``echo(name, cleared)``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.fakes._patience import patient


@dataclass
class Segment:
    """One outbound media payload in the playback buffer, playing from ``start``."""

    start: float
    data: bytes
    rate: int  # bytes per second
    cut_at: float | None = None

    @property
    def end(self) -> float:
        return self.start + len(self.data) / self.rate

    def played_bytes(self, now: float) -> int:
        until = now if self.cut_at is None else min(now, self.cut_at)
        return max(0, min(len(self.data), int((until - self.start) * self.rate)))


class PlaybackBuffer:
    def __init__(self, echo: Callable[[str, bool], Awaitable[None]]) -> None:
        self._echo = echo
        self.segments: list[Segment] = []
        self.buffer_end = 0.0  # monotonic time when everything queued has played
        self.last_media_at: float | None = None
        # True when the last thing queued was a mark (the server ends every spoken segment with one) or a
        # clear: audio without a mark after it is a segment still being spoken, however long its gap.
        self.settled = True
        self._pending: collections.deque[tuple[str, float]] = collections.deque()
        self._changed = asyncio.Event()

    def append(self, data: bytes, now: float, bytes_per_second: int) -> None:
        self.last_media_at = now
        self.settled = False
        segment = Segment(max(now, self.buffer_end), data, bytes_per_second)
        self.segments.append(segment)
        self.buffer_end = segment.end

    async def mark(self, name: str, now: float) -> None:
        self.settled = True
        if self.buffer_end <= now and not self._pending:
            await self._echo(name, False)
        else:
            self._pending.append((name, max(now, self.buffer_end)))
            self._changed.set()

    async def clear(self, now: float) -> None:
        self.settled = True
        for seg in self.segments:
            if seg.cut_at is None and seg.end > now:
                seg.cut_at = now
        self.buffer_end = min(self.buffer_end, now)
        flushed = list(self._pending)
        self._pending.clear()
        self._changed.set()
        for name, _ in flushed:
            await self._echo(name, True)

    async def pump_marks(self) -> None:
        """Echo each pending mark when playback reaches it (its due time on the wall clock). A task."""
        while True:
            self._changed.clear()
            if not self._pending:
                await self._changed.wait()
                continue
            delay = self._pending[0][1] - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), delay)
                continue
            name, _ = self._pending.popleft()
            await self._echo(name, False)

    @property
    def pending_marks(self) -> list[str]:
        return [name for name, _ in self._pending]

    def played(self, now: float) -> bytes:
        """What the caller has heard by ``now``: played audio only, cleared audio excluded."""
        return b"".join(seg.data[: seg.played_bytes(now)] for seg in self.segments)

    def queued_ms(self, now: float) -> float:
        return max(0.0, self.buffer_end - now) * 1000

    def quiet_at(self, quiet_ms: float, began: float, *, after_mark: bool = True) -> float:
        """When the agent will have been silent for ``quiet_ms``: its audio played out, its last segment
        closed by a mark, and no new media for that long (counted from ``began`` if none ever arrived).
        ``inf`` while a segment is still open: a stall of a busy machine is not the end of a sentence."""
        if after_mark and not self.settled:
            return float("inf")
        last = self.last_media_at if self.last_media_at is not None else began
        return max(self.buffer_end, last + quiet_ms / 1000)

    async def wait_quiet(
        self, quiet_ms: float, timeout: float, call: str, *, after_mark: bool = True
    ) -> None:
        """Wait until :meth:`quiet_at`; ``TimeoutError`` naming ``call`` after ``timeout`` (stretched).
        ``after_mark=False`` for servers that cannot close a segment when its audio ends (ElevenLabs
        ConvAI sends no end-of-audio event, so the product closes the segment at the next turn)."""
        deadline = time.monotonic() + patient(timeout)
        began = time.monotonic()
        while (now := time.monotonic()) < (ready_at := self.quiet_at(quiet_ms, began, after_mark=after_mark)):
            if now >= deadline:
                raise TimeoutError(
                    f"agent on call {call} not quiet for {quiet_ms} ms within {timeout} s "
                    f"({self.queued_ms(now):.0f} ms still buffered, segment open: {not self.settled})"
                )
            await asyncio.sleep(min(ready_at, deadline, now + 0.05) - now)
