"""Run callbacks later: once at a time, every N seconds, or on a 5-field cron schedule (API.md #56).

Each job is one asyncio task on the running loop that sleeps until its next fire time and then awaits
the callback (sync callbacks run inline, so they must be quick: use ``async def`` for I/O such as
``phone.call``). A job never overlaps itself: a fire time that passed while the callback was still
running is skipped, not queued. A callback that raises is logged and the job carries on.

Time comes from a :class:`~getpatter.scheduling.clocks.Clock`: the wall clock in production, a
``ManualClock`` in tests, so a schedule can be tested over days without waiting.

**Several instances.** Every instance of an application schedules the same jobs (the same code runs
everywhere). A :class:`FireCoordinator` decides which instance runs each fire time: the default runs
every fire locally; with Redis (``Patter(redis_url=...)``) each fire time is leased to exactly one
instance, and a lease whose instance died expires so another takes the fire over. A job is known
across instances by its ``name`` (default: kind, schedule and the callback's qualified name), so two
instances must give the same job the same name — the default does when they run the same code.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol

from getpatter.errors import PatterConfigError
from getpatter.scheduling.clocks import Clock, SystemClock
from getpatter.scheduling.cron import CronSchedule

__all__ = [
    "FireCoordinator",
    "LocalFires",
    "ScheduleHandle",
    "Scheduler",
    "default_scheduler",
    "schedule_cron",
    "schedule_interval",
    "schedule_once",
]

log = logging.getLogger("getpatter.scheduling")

JobCallback = Callable[[], Any]
_ids = itertools.count(1)
#: The shared grid of interval jobs across instances starts here (so every instance computes the same
#: fire times for the same interval).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class FireCoordinator(Protocol):
    """Decides whether this instance runs one fire time of a job."""

    async def fire(self, job_name: str, when: datetime, run: Callable[[], Awaitable[None]]) -> bool:
        """Run ``run`` here if this instance wins ``when``; True when it ran here."""
        ...


class LocalFires:
    """One process, no fleet: every fire time runs here."""

    async def fire(self, job_name: str, when: datetime, run: Callable[[], Awaitable[None]]) -> bool:
        await run()
        return True


class ScheduleHandle:
    """A scheduled job. ``pending`` is True until it is cancelled or has fired for the last time."""

    def __init__(self, job_id: str, name: str, task: asyncio.Task[None]) -> None:
        self.job_id = job_id
        #: The job's name across instances (see the module docstring).
        self.name = name
        self._task = task
        self._cancelled = False
        #: When the job fires next (``None`` once it will not fire again).
        self.next_run_time: datetime | None = None
        #: How many times the callback has run on this instance.
        self.runs = 0

    @property
    def pending(self) -> bool:
        # ``Task.cancel()`` only asks: the task is done one loop step later.
        return not self._cancelled and not self._task.done()

    def cancel(self) -> None:
        """Stop the job; a callback already running is cancelled too. Idempotent."""
        self._cancelled = True
        self._task.cancel()
        self.next_run_time = None

    def __repr__(self) -> str:
        return f"ScheduleHandle(job_id={self.job_id!r}, pending={self.pending}, next={self.next_run_time})"


def _job_name(kind: str, spec: str, callback: JobCallback, name: str | None) -> str:
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise PatterConfigError(f"name must be a non-empty str, got {name!r}")
        return name.strip()
    qualname = getattr(callback, "__qualname__", type(callback).__qualname__)
    module = getattr(callback, "__module__", None) or type(callback).__module__
    return f"{kind}:{spec}:{module}.{qualname}"


class Scheduler:
    """Creates jobs on the running event loop, all timed by one clock and placed by one coordinator."""

    def __init__(self, clock: Clock | None = None, coordinator: FireCoordinator | None = None) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        #: Who runs each fire time; replace it to join a fleet (jobs already running switch too).
        self.coordinator: FireCoordinator = coordinator if coordinator is not None else LocalFires()
        self._jobs: dict[str, ScheduleHandle] = {}

    def schedule_once(
        self, at: datetime, callback: JobCallback, *, name: str | None = None
    ) -> ScheduleHandle:
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

        job_name = _job_name("once", when.astimezone(UTC).isoformat(), callback, name)
        return self._start("once", job_name, callback, next_time, after_fire=mark)

    def schedule_interval(
        self, seconds: float, callback: JobCallback, *, name: str | None = None
    ) -> ScheduleHandle:
        """Run ``callback`` every ``seconds`` on a fixed grid (no drift), first within ``seconds`` from now.

        The grid is anchored at a fixed instant, not at the moment of scheduling, so every instance of a
        fleet computes the same fire times.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise PatterConfigError(
                f"seconds must be a number > 0, got {seconds!r}. Fix: schedule_interval(60, ...)"
            )
        if not math.isfinite(seconds):
            raise PatterConfigError("seconds must be finite")
        step = timedelta(seconds=seconds)

        def next_time(now: datetime) -> datetime:
            return _EPOCH + step * (math.floor((now - _EPOCH) / step) + 1)

        job_name = _job_name("interval", f"{seconds:g}s", callback, name)
        return self._start("interval", job_name, callback, next_time)

    def schedule_cron(
        self,
        cron: str,
        callback: JobCallback,
        *,
        timezone: tzinfo | None = None,
        name: str | None = None,
    ) -> ScheduleHandle:
        """Run ``callback`` at every minute matching the 5-field ``cron`` expression, in ``timezone``."""
        schedule = CronSchedule.parse(cron)
        zone = timezone if timezone is not None else self.clock.now().tzinfo
        if schedule.next_after(self.clock.now().astimezone(zone)) is None:
            raise PatterConfigError(
                f"cron={cron!r}: it never matches a real date. Fix: check the day-of-month/month pair, "
                "e.g. '0 0 28 2 *' rather than '0 0 30 2 *'."
            )

        def next_time(now: datetime) -> datetime | None:
            return schedule.next_after(now.astimezone(zone))

        job_name = _job_name("cron", f"{schedule.expression}@{zone}", callback, name)
        return self._start("cron", job_name, callback, next_time)

    def cancel_all(self) -> None:
        for handle in list(self._jobs.values()):
            handle.cancel()

    def _start(
        self,
        kind: str,
        job_name: str,
        callback: JobCallback,
        next_time: Callable[[datetime], datetime | None],
        *,
        after_fire: Callable[[], None] | None = None,
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

        async def run_callback() -> None:
            await _invoke(callback, job_id)

        async def run() -> None:
            handle = await started
            try:
                while (when := next_time(self.clock.now())) is not None:
                    handle.next_run_time = when
                    await self.clock.sleep_until(when)
                    if after_fire is not None:
                        after_fire()
                    if await self.coordinator.fire(job_name, when, run_callback):
                        handle.runs += 1
            finally:
                handle.next_run_time = None
                self._jobs.pop(job_id, None)

        handle = ScheduleHandle(job_id, job_name, loop.create_task(run(), name=f"getpatter-{job_id}"))
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


def default_scheduler() -> Scheduler:
    """The wall-clock scheduler behind the module functions (``Patter(redis_url=...)`` sets its
    coordinator so its jobs fire once across the fleet)."""
    global _default
    if _default is None:
        _default = Scheduler()
    return _default


def schedule_once(at: datetime, callback: JobCallback, *, name: str | None = None) -> ScheduleHandle:
    """Run ``callback`` once at ``at`` on the default (wall-clock) scheduler."""
    return default_scheduler().schedule_once(at, callback, name=name)


def schedule_interval(seconds: float, callback: JobCallback, *, name: str | None = None) -> ScheduleHandle:
    """Run ``callback`` every ``seconds`` on the default (wall-clock) scheduler."""
    return default_scheduler().schedule_interval(seconds, callback, name=name)


def schedule_cron(
    cron: str, callback: JobCallback, *, timezone: tzinfo | None = None, name: str | None = None
) -> ScheduleHandle:
    """Run ``callback`` on the 5-field ``cron`` schedule (local time unless ``timezone``)."""
    return default_scheduler().schedule_cron(cron, callback, timezone=timezone, name=name)
