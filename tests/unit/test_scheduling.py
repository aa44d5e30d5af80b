"""Scheduler: once / interval / cron jobs on a ManualClock (time moves only when the test says so)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from getpatter.errors import PatterConfigError
from getpatter.scheduling import CronSchedule, ManualClock, Scheduler, schedule_interval

# Monday 2026-01-05 08:30 UTC
START = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


def _clocked() -> tuple[ManualClock, Scheduler]:
    clock = ManualClock(START)
    return clock, Scheduler(clock)


async def test_once_fires_exactly_at_its_time_then_is_no_longer_pending() -> None:
    clock, scheduler = _clocked()
    fired: list[datetime] = []
    handle = scheduler.schedule_once(START + timedelta(hours=1), lambda: fired.append(clock.now()))
    assert handle.pending and handle.next_run_time == START + timedelta(hours=1)
    await clock.advance(3599)
    assert fired == [] and handle.pending
    await clock.advance(1)
    await asyncio.sleep(0)
    assert fired == [START + timedelta(hours=1)]
    assert not handle.pending and handle.next_run_time is None and handle.runs == 1
    await clock.advance(86400)
    assert len(fired) == 1


async def test_once_accepts_naive_and_past_times() -> None:
    clock, scheduler = _clocked()
    fired: list[str] = []
    scheduler.schedule_once(datetime(2026, 1, 5, 9, 0), lambda: fired.append("naive"))  # clock's zone: UTC
    scheduler.schedule_once(START - timedelta(days=1), lambda: fired.append("past"))
    await clock.advance(0)
    await asyncio.sleep(0)
    assert fired == ["past"]
    await clock.advance(1800)
    assert fired == ["past", "naive"]


async def test_interval_keeps_a_fixed_grid_and_async_callbacks_are_awaited() -> None:
    clock, scheduler = _clocked()
    seen: list[datetime] = []

    async def tick() -> None:
        await asyncio.sleep(0)
        seen.append(clock.now())

    handle = scheduler.schedule_interval(600, tick)
    await clock.advance(3600)
    assert seen == [START + timedelta(minutes=10 * k) for k in range(1, 7)]
    handle.cancel()
    await asyncio.sleep(0)
    assert not handle.pending
    await clock.advance(3600)
    assert len(seen) == 6


async def test_a_failing_callback_is_logged_and_the_job_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock, scheduler = _clocked()
    calls = 0

    def flaky() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    handle = scheduler.schedule_interval(60, flaky)
    await clock.advance(180)
    assert calls == 3 and handle.pending
    assert "scheduled job interval-" in caplog.text and "boom" in caplog.text
    scheduler.cancel_all()


async def test_cron_weekday_mornings_over_two_weeks() -> None:
    clock, scheduler = _clocked()
    fired: list[datetime] = []
    handle = scheduler.schedule_cron("0 9 * * 1-5", lambda: fired.append(clock.now()))
    assert handle.next_run_time == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    await clock.advance(14 * 86400)
    assert [d.strftime("%a %d %H:%M") for d in fired] == [
        "Mon 05 09:00",
        "Tue 06 09:00",
        "Wed 07 09:00",
        "Thu 08 09:00",
        "Fri 09 09:00",
        "Mon 12 09:00",
        "Tue 13 09:00",
        "Wed 14 09:00",
        "Thu 15 09:00",
        "Fri 16 09:00",
    ]
    handle.cancel()


async def test_cron_in_another_timezone() -> None:
    clock, scheduler = _clocked()
    fired: list[datetime] = []
    rome = ZoneInfo("Europe/Rome")  # UTC+1 in January
    scheduler.schedule_cron("30 10 * * *", lambda: fired.append(clock.now()), timezone=rome)
    await clock.advance(86400)
    assert fired == [datetime(2026, 1, 5, 9, 30, tzinfo=UTC)]
    assert fired[0].astimezone(rome).hour == 10


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", datetime(2026, 1, 5, 8, 31), datetime(2026, 1, 5, 8, 45)),
        ("0 0 1 * *", datetime(2026, 1, 31, 23, 59), datetime(2026, 2, 1, 0, 0)),
        ("0 12 * jan-mar mon", datetime(2026, 3, 31, 12, 0), datetime(2027, 1, 4, 12, 0)),
        ("0 0 29 2 *", datetime(2026, 3, 1), datetime(2028, 2, 29, 0, 0)),
        ("5,10-12/2 8 * * *", datetime(2026, 1, 5, 8, 5), datetime(2026, 1, 5, 8, 10)),
        ("0 8 13 * fri", datetime(2026, 1, 5), datetime(2026, 1, 9, 8, 0)),  # 13th OR Friday
        ("0 0 * * 7", datetime(2026, 1, 5), datetime(2026, 1, 11, 0, 0)),  # 7 is Sunday
        ("@hourly", datetime(2026, 1, 5, 8, 0), datetime(2026, 1, 5, 9, 0)),
        ("0 23 * DEC SUN", datetime(2026, 1, 5), datetime(2026, 12, 6, 23, 0)),
        ("30 2/6 * * *", datetime(2026, 1, 5, 3, 0), datetime(2026, 1, 5, 8, 30)),
    ],
)
def test_cron_next_after(expression: str, after: datetime, expected: datetime) -> None:
    tz = UTC
    assert CronSchedule.parse(expression).next_after(after.replace(tzinfo=tz)) == expected.replace(tzinfo=tz)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 9 * *", "expected 5 fields"),
        ("60 * * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 0 0 * *", "day of month"),
        ("0 0 * 13 *", "month"),
        ("0 0 * * 8", "day of week"),
        ("*/0 * * * *", "step"),
        ("0 0 * * mon-sun2", "day of week 'mon-sun2'"),
        ("0 0 * * funday", "day of week"),
    ],
)
def test_bad_cron_names_the_field_and_the_fix(expression: str, fragment: str) -> None:
    with pytest.raises(PatterConfigError, match=fragment) as info:
        CronSchedule.parse(expression)
    assert "0 9 * * 1-5" in str(info.value)


async def test_bad_arguments_raise_config_errors() -> None:
    _, scheduler = _clocked()
    with pytest.raises(PatterConfigError, match="never matches"):
        scheduler.schedule_cron("0 0 30 2 *", print)
    with pytest.raises(PatterConfigError, match="seconds must be"):
        scheduler.schedule_interval(0, print)
    with pytest.raises(PatterConfigError, match="seconds must be"):
        scheduler.schedule_interval(True, print)
    with pytest.raises(PatterConfigError, match="callback must be callable"):
        scheduler.schedule_interval(5, "not callable")  # type: ignore[arg-type]
    with pytest.raises(PatterConfigError, match="at must be a datetime"):
        scheduler.schedule_once("09:00", print)  # type: ignore[arg-type]
    with pytest.raises(PatterConfigError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


def test_module_functions_need_a_running_loop() -> None:
    with pytest.raises(PatterConfigError, match="running event loop"):
        schedule_interval(60, print)


async def test_module_functions_use_the_wall_clock_and_cancel() -> None:
    handle = schedule_interval(3600, print)
    assert handle.pending and handle.job_id.startswith("interval-")
    assert handle.next_run_time is not None and handle.next_run_time > datetime.now(UTC)
    handle.cancel()
    await asyncio.sleep(0)
    assert not handle.pending


NEW_YORK = ZoneInfo("America/New_York")


async def _fires_in(zone: ZoneInfo, start: datetime, cron: str, seconds: float) -> list[str]:
    clock = ManualClock(start.astimezone(UTC))
    fired: list[datetime] = []
    handle = Scheduler(clock).schedule_cron(cron, lambda: fired.append(clock.now()), timezone=zone)
    await clock.advance(seconds)
    handle.cancel()
    return [f.astimezone(zone).strftime("%m-%d %H:%M %Z") for f in fired]


async def test_a_wall_time_skipped_by_spring_forward_does_not_fire() -> None:
    start = datetime(2026, 3, 7, 12, 0, tzinfo=NEW_YORK)  # 2026-03-08 02:00 EST jumps to 03:00 EDT
    fires = await _fires_in(NEW_YORK, start, "30 2 * * *", 3 * 86400)
    assert fires == ["03-09 02:30 EDT", "03-10 02:30 EDT"]
    fires = await _fires_in(NEW_YORK, datetime(2026, 3, 8, 1, 0, tzinfo=NEW_YORK), "*/30 * * * *", 7200)
    assert fires == ["03-08 01:30 EST", "03-08 03:00 EDT", "03-08 03:30 EDT", "03-08 04:00 EDT"]


async def test_a_wall_time_repeated_by_fall_back_fires_once() -> None:
    start = datetime(2026, 10, 31, 12, 0, tzinfo=NEW_YORK)  # 2026-11-01 02:00 EDT falls back to 01:00 EST
    fires = await _fires_in(NEW_YORK, start, "30 1 * * *", 2 * 86400)
    assert fires == ["11-01 01:30 EDT", "11-02 01:30 EST"]
    fires = await _fires_in(NEW_YORK, datetime(2026, 11, 1, 0, 10, tzinfo=NEW_YORK), "*/30 * * * *", 4 * 3600)
    assert fires == [
        "11-01 00:30 EDT",
        "11-01 01:00 EDT",
        "11-01 01:30 EDT",
        "11-01 02:00 EST",
        "11-01 02:30 EST",
        "11-01 03:00 EST",
    ]


async def test_a_job_started_inside_the_repeated_hour_does_not_fire_for_the_past_first_hour() -> None:
    inside = datetime(2026, 11, 1, 1, 10, tzinfo=NEW_YORK, fold=1)  # 01:10 EST, the second 01:10
    fires = await _fires_in(NEW_YORK, inside, "*/30 * * * *", 3600)
    assert fires == ["11-01 02:00 EST"]


async def test_fire_times_that_pass_while_the_callback_runs_are_skipped_not_queued() -> None:
    clock, scheduler = _clocked()
    release = asyncio.Event()
    fired: list[datetime] = []

    async def slow() -> None:
        fired.append(clock.now())
        if len(fired) == 1:
            await release.wait()

    handle = scheduler.schedule_interval(60, slow)
    await clock.advance(300)  # the first run is still going at 08:35
    release.set()
    for _ in range(20):
        await asyncio.sleep(0)
    await clock.advance(60)
    assert fired == [START + timedelta(minutes=1), START + timedelta(minutes=6)]
    handle.cancel()


def test_a_range_that_runs_backwards_wraps_around() -> None:
    monday = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    schedule = CronSchedule.parse("0 9 * * fri-mon")
    fires = [schedule.next_after(monday)]
    for _ in range(4):
        previous = fires[-1]
        assert previous is not None
        fires.append(schedule.next_after(previous))
    assert [f.strftime("%a") for f in fires if f is not None] == ["Fri", "Sat", "Sun", "Mon", "Fri"]


async def test_fleet_job_names_default_to_the_schedule_and_the_callback() -> None:
    _, scheduler = _clocked()

    def morning_calls() -> None: ...

    cron = scheduler.schedule_cron("0 9 * * 1-5", morning_calls)
    named = scheduler.schedule_interval(60, morning_calls, name="heartbeat")
    assert cron.name.startswith("cron:0 9 * * 1-5@UTC:") and cron.name.endswith("morning_calls")
    assert named.name == "heartbeat"
    with pytest.raises(PatterConfigError, match="name must be"):
        scheduler.schedule_interval(60, morning_calls, name=" ")
    cron.cancel()
    named.cancel()


async def test_pending_is_false_right_after_cancel_without_yielding_to_the_loop() -> None:
    clock, scheduler = _clocked()
    handle = scheduler.schedule_interval(60, print)
    assert handle.pending
    handle.cancel()
    assert not handle.pending  # no loop step in between: cancel() alone settles it
    assert "pending=False" in repr(handle)
    await clock.advance(180)
    assert not handle.pending
