"""Run callbacks later (API.md #56): :mod:`.jobs` (scheduler, handles, fleet coordination), :mod:`.cron`
(cron expressions on ``croniter``), :mod:`.clocks` (wall clock and a manual clock for tests)."""

from getpatter.scheduling.clocks import Clock, ManualClock, SystemClock
from getpatter.scheduling.cron import CronSchedule
from getpatter.scheduling.jobs import (
    FireCoordinator,
    LocalFires,
    ScheduleHandle,
    Scheduler,
    default_scheduler,
    schedule_cron,
    schedule_interval,
    schedule_once,
)

__all__ = [
    "Clock",
    "CronSchedule",
    "FireCoordinator",
    "LocalFires",
    "ManualClock",
    "ScheduleHandle",
    "Scheduler",
    "SystemClock",
    "default_scheduler",
    "schedule_cron",
    "schedule_interval",
    "schedule_once",
]
