"""Where schedules get their time: the wall clock in production, a manual clock in tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from getpatter.errors import PatterConfigError

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when``."""
        ...


class SystemClock:
    """Wall-clock time in ``tz`` (default: the machine's local zone). Long sleeps wake every minute to
    re-read the clock, so a clock that jumps (NTP, suspend) still fires on time."""

    def __init__(self, tz: tzinfo | None = None) -> None:
        self._tz = tz

    def now(self) -> datetime:
        return datetime.now(self._tz) if self._tz is not None else datetime.now().astimezone()

    async def sleep_until(self, when: datetime) -> None:
        while True:
            # In UTC: two times of one zone compare as wall times, which is wrong across a DST fall-back.
            delay = (when.astimezone(UTC) - datetime.now(UTC)).total_seconds()
            if delay <= 0:
                return
            await asyncio.sleep(min(delay, 60.0))


class ManualClock:
    """A clock that moves only on :meth:`advance`: for tests of schedules, with no real waiting."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise PatterConfigError("ManualClock(start) needs a timezone-aware datetime, e.g. tzinfo=UTC")
        self._zone = start.tzinfo
        self._now = start.astimezone(UTC)  # kept in UTC: wall times of one zone compare without fold
        self._sleepers: list[tuple[datetime, asyncio.Future[None], asyncio.Task[Any] | None]] = []

    def now(self) -> datetime:
        return self._now.astimezone(self._zone)

    async def sleep_until(self, when: datetime) -> None:
        when = when.astimezone(UTC)
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, future, asyncio.current_task()))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper in time order and letting its job run
        (its callback and its next sleep) before time moves past it."""
        target = self._now + timedelta(seconds=seconds)
        for _ in range(10):  # let jobs created just now reach their first sleep
            await asyncio.sleep(0)
        while True:
            due = [s for s in self._sleepers if s[0] <= target and not s[1].done()]
            if not due:
                break
            when = min(s[0] for s in due)
            self._now = max(self._now, when)
            woken = [s for s in due if s[0] == when]
            self._sleepers = [s for s in self._sleepers if s not in woken and not s[1].done()]
            for _, future, _ in woken:
                future.set_result(None)
            await self._settle([task for _, _, task in woken])
        self._now = target

    async def _settle(self, tasks: list[asyncio.Task[Any] | None]) -> None:
        """Yield until each woken task sleeps again on this clock or finishes (bounded, no real time)."""
        for _ in range(10_000):
            sleeping = {s[2] for s in self._sleepers}
            if all(t is None or t.done() or t in sleeping for t in tasks):
                return
            await asyncio.sleep(0)
