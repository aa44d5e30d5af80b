"""Run callbacks later: once at a time, every N seconds, or on a 5-field cron schedule (API.md #56).

Each job is one asyncio task on the running loop that sleeps until its next fire time and then awaits
the callback (sync callbacks run inline, so they must be quick: use ``async def`` for I/O such as
``phone.call``). A job never overlaps itself: a fire time that passed while the callback was still
running is skipped, not queued. A callback that raises is logged and the job carries on.

Time comes from a :class:`Clock`: :class:`SystemClock` in production, :class:`ManualClock` in tests,
which only moves when told to (``await clock.advance(3600)``), so a schedule can be tested over days
without waiting. Cron schedules are evaluated in the wall time of ``timezone`` (default: the clock's),
minute by minute; at DST changes a skipped wall time does not fire and a repeated one fires once.

No third-party scheduler is needed: the cron matcher here supports ``*``, values, ranges ``a-b``,
lists ``a,b``, steps ``*/n`` and ``a-b/n``, month and weekday names (``jan``, ``mon``), Sunday as 0 or 7,
the usual either-day rule when both day-of-month and day-of-week are restricted, and ``@hourly``,
``@daily``, ``@weekly``, ``@monthly``, ``@yearly``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Protocol

from getpatter.errors import PatterConfigError

__all__ = [
    "Clock",
    "CronSchedule",
    "ManualClock",
    "ScheduleHandle",
    "Scheduler",
    "SystemClock",
    "schedule_cron",
    "schedule_interval",
    "schedule_once",
]

log = logging.getLogger("getpatter.scheduling")

JobCallback = Callable[[], Any]
_ids = itertools.count(1)


# ---- clocks -------------------------------------------------------------------------------------------
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
            delay = (when - self.now()).total_seconds()
            if delay <= 0:
                return
            await asyncio.sleep(min(delay, 60.0))


class ManualClock:
    """A clock that moves only on :meth:`advance`: for tests of schedules, with no real waiting."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise PatterConfigError("ManualClock(start) needs a timezone-aware datetime, e.g. tzinfo=UTC")
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None], asyncio.Task[Any] | None]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime) -> None:
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


# ---- cron ---------------------------------------------------------------------------------------------
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: How far ahead a schedule is searched before it counts as "never fires" (covers Feb 29 in 8 years).
_SEARCH_YEARS = 9


def _bad(expression: str, problem: str) -> PatterConfigError:
    return PatterConfigError(
        f"cron={expression!r}: {problem}. Fix: five fields 'minute hour day-of-month month day-of-week', "
        "e.g. '0 9 * * 1-5' (09:00 on weekdays) or '*/15 * * * *' (every 15 minutes)."
    )


def _parse_value(text: str, names: dict[str, int], expression: str, field: str) -> int:
    if text.isdigit():
        return int(text)
    value = names.get(text.lower())
    if value is None:
        raise _bad(expression, f"{field} value {text!r} is not a number or a known name")
    return value


def _parse_field(text: str, spec: tuple[str, int, int, dict[str, int]], expression: str) -> frozenset[int]:
    field, low, high, names = spec
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise _bad(expression, f"{field} step {step_text!r} must be a whole number >= 1")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _parse_value(first, names, expression, field)
            end = _parse_value(last, names, expression, field)
        else:
            start = _parse_value(base, names, expression, field)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise _bad(expression, f"{field} {item!r} is outside {low}-{high} or reversed")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed 5-field cron expression; :meth:`next_after` finds its next fire time."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        if not isinstance(expression, str):
            raise PatterConfigError(f"cron must be a str like '0 9 * * 1-5', got {type(expression).__name__}")
        text = _ALIASES.get(expression.strip().lower(), expression.strip())
        parts = text.split()
        if len(parts) != 5:
            raise _bad(expression, f"expected 5 fields, got {len(parts)}")
        minutes, hours, days, months, weekdays = (
            _parse_field(part, spec, expression) for part, spec in zip(parts, _FIELDS, strict=True)
        )
        return cls(
            expression=expression,
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=frozenset(d % 7 for d in weekdays),
            day_restricted=not parts[2].startswith("*"),
            weekday_restricted=not parts[4].startswith("*"),
        )

    def _day_matches(self, day: datetime) -> bool:
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return by_date or by_weekday  # classic cron: either restriction may match
        return by_date and by_weekday

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching minute strictly after ``after``, in ``after``'s timezone (``None`` if the
        expression never matches, such as ``0 0 30 2 *``)."""
        tz = after.tzinfo
        t = after.replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                t = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1)
            elif not self._day_matches(t):
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = datetime(t.year, t.month, t.day, t.hour) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                later = [m for m in self.minutes if m > t.minute]
                hour = datetime(t.year, t.month, t.day, t.hour)
                t = hour.replace(minute=later[0]) if later else hour + timedelta(hours=1)
            else:
                return t.replace(tzinfo=tz)
        return None


# ---- jobs ---------------------------------------------------------------------------------------------
class ScheduleHandle:
    """A scheduled job. ``pending`` is True until it is cancelled or has fired for the last time."""

    def __init__(self, job_id: str, task: asyncio.Task[None]) -> None:
        self.job_id = job_id
        self._task = task
        self._cancelled = False
        #: When the job fires next (``None`` once it will not fire again).
        self.next_run_time: datetime | None = None
        #: How many times the callback has run.
        self.runs = 0

    @property
    def pending(self) -> bool:
        # ``Task.cancel()`` only requests cancellation: the task is done one loop step later.
        return not self._cancelled and not self._task.done()

    def cancel(self) -> None:
        """Stop the job; a callback already running is cancelled too. Idempotent."""
        self._cancelled = True
        self._task.cancel()
        self.next_run_time = None

    def __repr__(self) -> str:
        return f"ScheduleHandle(job_id={self.job_id!r}, pending={self.pending}, next={self.next_run_time})"


class Scheduler:
    """Creates jobs on the running event loop, all timed by one :class:`Clock`."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._jobs: dict[str, ScheduleHandle] = {}

    def schedule_once(self, at: datetime, callback: JobCallback) -> ScheduleHandle:
        """Run ``callback`` once at ``at`` (a naive ``at`` is in the clock's timezone; a past one runs
        at once)."""
        if not isinstance(at, datetime):
            raise PatterConfigError(
                f"at must be a datetime, got {type(at).__name__}. Fix: datetime(2026, ...)"
            )
        when = at if at.tzinfo is not None else at.replace(tzinfo=self.clock.now().tzinfo)
        fired = False

        def next_time(_: datetime) -> datetime | None:
            return None if fired else when

        def mark() -> None:
            nonlocal fired
            fired = True

        return self._start("once", callback, next_time, after_run=mark)

    def schedule_interval(self, seconds: float, callback: JobCallback) -> ScheduleHandle:
        """Run ``callback`` every ``seconds``, first ``seconds`` from now, on a fixed grid (no drift)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise PatterConfigError(
                f"seconds must be a number > 0, got {seconds!r}. Fix: schedule_interval(60, ...)"
            )
        if not math.isfinite(seconds):
            raise PatterConfigError("seconds must be finite")
        anchor, step = self.clock.now(), timedelta(seconds=seconds)

        def next_time(now: datetime) -> datetime:
            return anchor + step * (math.floor((now - anchor) / step) + 1)

        return self._start("interval", callback, next_time)

    def schedule_cron(
        self, cron: str, callback: JobCallback, *, timezone: tzinfo | None = None
    ) -> ScheduleHandle:
        """Run ``callback`` at every minute matching the 5-field ``cron`` expression, in ``timezone``."""
        schedule = CronSchedule.parse(cron)
        zone = timezone if timezone is not None else self.clock.now().tzinfo
        if schedule.next_after(self.clock.now().astimezone(zone)) is None:
            raise _bad(cron, "it never matches a real date")

        def next_time(now: datetime) -> datetime | None:
            return schedule.next_after(now.astimezone(zone))

        return self._start("cron", callback, next_time)

    def cancel_all(self) -> None:
        for handle in list(self._jobs.values()):
            handle.cancel()

    def _start(
        self,
        kind: str,
        callback: JobCallback,
        next_time: Callable[[datetime], datetime | None],
        *,
        after_run: Callable[[], None] | None = None,
    ) -> ScheduleHandle:
        if not callable(callback):
            raise PatterConfigError(
                f"callback must be callable (sync or async), got {type(callback).__name__}"
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise PatterConfigError(
                "schedule_* needs a running event loop: call it from async code (e.g. before "
                "`await phone.serve(agent)`)"
            ) from None
        job_id = f"{kind}-{next(_ids)}"
        started: asyncio.Future[ScheduleHandle] = loop.create_future()

        async def run() -> None:
            handle = await started
            try:
                while (when := next_time(self.clock.now())) is not None:
                    handle.next_run_time = when
                    await self.clock.sleep_until(when)
                    handle.runs += 1
                    if after_run is not None:
                        after_run()
                    await _invoke(callback, job_id)
            finally:
                handle.next_run_time = None
                self._jobs.pop(job_id, None)

        handle = ScheduleHandle(job_id, loop.create_task(run(), name=f"getpatter-{job_id}"))
        handle.next_run_time = next_time(self.clock.now())
        started.set_result(handle)
        self._jobs[job_id] = handle
        return handle


async def _invoke(callback: JobCallback, job_id: str) -> None:
    try:
        result = callback()
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("scheduled job %s failed", job_id)


_default: Scheduler | None = None


def _scheduler() -> Scheduler:
    global _default
    if _default is None:
        _default = Scheduler()
    return _default


def schedule_once(at: datetime, callback: JobCallback) -> ScheduleHandle:
    """Run ``callback`` once at ``at`` on the default (wall-clock) scheduler."""
    return _scheduler().schedule_once(at, callback)


def schedule_interval(seconds: float, callback: JobCallback) -> ScheduleHandle:
    """Run ``callback`` every ``seconds`` on the default (wall-clock) scheduler."""
    return _scheduler().schedule_interval(seconds, callback)


def schedule_cron(cron: str, callback: JobCallback, *, timezone: tzinfo | None = None) -> ScheduleHandle:
    """Run ``callback`` on the 5-field ``cron`` schedule (local time unless ``timezone``)."""
    return _scheduler().schedule_cron(cron, callback, timezone=timezone)
