"""5-field cron expressions, parsed and iterated by ``croniter``; what is ours is the wall-time rule.

Expressions: ``minute hour day-of-month month day-of-week`` with ``*``, values, ranges ``a-b`` (a range
that runs backwards wraps around: ``fri-mon`` is Friday to Monday), lists, steps ``*/n``, month and
weekday names, Sunday as 0 or 7, either-day matching when both day fields are restricted, and the
``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly`` shorthands.

Fire times are wall times in the schedule's timezone. At DST changes a wall time that does not exist
(spring forward) does not fire, and a wall time that happens twice (fall back) fires once, the first
time — what an operator who wrote ``30 1 * * *`` expects of a call campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError

from getpatter.errors import PatterConfigError

__all__ = ["CronSchedule"]

_FIELD_NAMES: Final = ("minute", "hour", "day of month", "month", "day of week")
_ALIASES: Final = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
#: How far ahead a schedule is searched before it counts as "never fires" (covers Feb 29 in 8 years).
_SEARCH_YEARS: Final = 9
#: Candidates examined per lookup before giving up: DST can only ever skip a handful.
_MAX_CANDIDATES: Final = 64


def _bad(expression: str, problem: str) -> PatterConfigError:
    return PatterConfigError(
        f"cron={expression!r}: {problem}. Fix: five fields 'minute hour day-of-month month day-of-week', "
        "e.g. '0 9 * * 1-5' (09:00 on weekdays) or '*/15 * * * *' (every 15 minutes)."
    )


def _field_problem(parts: list[str]) -> str:
    """Name the first field croniter refuses on its own (every other field a wildcard)."""
    for index, (name, text) in enumerate(zip(_FIELD_NAMES, parts, strict=True)):
        probe = ["*"] * 5
        probe[index] = text
        try:
            croniter(" ".join(probe))
        except CroniterError as exc:
            reason = str(exc).rsplit("]", 1)[-1].strip(" ,") or "not valid"
            return f"{name} {text!r} is not a number, a known name or in range ({reason})"
    return "the fields do not combine into a valid schedule"


def _exists(moment: datetime) -> bool:
    """False for a wall time that a DST change skips (it does not survive a round trip through UTC)."""
    round_trip = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return round_trip.replace(tzinfo=None) == moment.replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A validated cron expression; :meth:`next_after` finds its next fire time."""

    expression: str

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        if not isinstance(expression, str):
            raise PatterConfigError(f"cron must be a str like '0 9 * * 1-5', got {type(expression).__name__}")
        text = " ".join(expression.split())
        if text.lower() not in _ALIASES:
            parts = text.split(" ") if text else []
            if len(parts) != 5:
                raise _bad(expression, f"expected 5 fields, got {len(parts)}")
            try:
                croniter(text)
            except CroniterError:
                raise _bad(expression, _field_problem(parts)) from None
        return cls(text.lower() if text.lower() in _ALIASES else text)

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after``, in ``after``'s timezone (``None`` when the
        expression never matches a real date, such as ``0 0 30 2 *``)."""
        zone = after.tzinfo
        wall = croniter(
            self.expression,
            after.replace(tzinfo=None, second=0, microsecond=0),
            max_years_between_matches=_SEARCH_YEARS,
        )
        for _ in range(_MAX_CANDIDATES):
            try:
                candidate = wall.get_next(datetime)
            except CroniterBadDateError:
                return None
            moment = candidate.replace(tzinfo=zone)  # fold=0: the first of a repeated wall time
            if zone is not None and not _exists(moment):
                continue  # skipped by a DST change
            if moment.astimezone(UTC) > after.astimezone(UTC):  # same-zone comparison would ignore fold
                return moment
        return None
