"""Admission control on its own: limits, tickets, reservations that lapse, loop-lag shedding, config."""

from __future__ import annotations

import asyncio
import time

import pytest

from getpatter.errors import PatterConfigError
from getpatter.server.admission import Admission, AdmissionLimits, Direction, RefusalReason
from getpatter.server.loop_lag import LoopLagMonitor
from tests.fakes._patience import patient


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TickDriver:
    """Drives a :class:`LoopLagMonitor` tick by tick: each ``tick(lag)`` lets one sleep end ``lag``
    seconds later than it asked, on a clock that moves only here."""

    def __init__(self) -> None:
        self.now = 0.0
        self._wake: asyncio.Queue[float] = asyncio.Queue()
        self.asleep = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.asleep.set()
        lag = await self._wake.get()
        self.now += seconds + lag

    async def tick(self, monitor: LoopLagMonitor, lag: float) -> None:
        before = monitor.samples
        await asyncio.wait_for(self.asleep.wait(), patient(5))
        self.asleep.clear()
        await self._wake.put(lag)
        while monitor.samples == before:
            await asyncio.sleep(0)


def refusals() -> tuple[list[tuple[str, str, str]], Admission]:
    seen: list[tuple[str, str, str]] = []

    def told(call_id: str, direction: Direction, reason: RefusalReason) -> None:
        seen.append((call_id, direction, reason))

    return seen, Admission(AdmissionLimits(max_calls=2, max_loop_lag_s=0), on_refused=told)


async def test_the_cap_admits_that_many_calls_and_refuses_the_next_until_one_ends() -> None:
    seen, admission = refusals()
    first = await admission.try_admit("CA1", "inbound")
    second = await admission.try_admit("CA2", "inbound")
    assert first is not None and second is not None
    assert await admission.try_admit("CA3", "inbound") is None
    assert seen == [("CA3", "inbound", "capacity")]
    assert admission.refused["capacity"] == 1 and admission.last_refusal == "capacity"
    first.release()
    first.release()  # idempotent: the second release frees nothing more
    assert admission.live == 1
    third = await admission.try_admit("CA3", "inbound")
    assert third is not None and admission.live == 2
    assert await admission.try_admit("CA4", "inbound") is None


async def test_a_retried_webhook_gets_the_same_ticket_and_takes_no_second_place() -> None:
    _, admission = refusals()
    ticket = await admission.try_admit("CA1", "inbound")
    assert await admission.try_admit("CA1", "inbound") is ticket
    assert admission.live == 1


async def test_a_reservation_lapses_when_no_media_socket_comes_and_an_attached_one_does_not() -> None:
    clock = Clock()
    admission = Admission(AdmissionLimits(max_calls=2, max_loop_lag_s=0), clock=clock)
    waiting = await admission.try_admit("CA1", "inbound", hold_s=30)
    running = await admission.try_admit("CA2", "inbound", hold_s=30)
    assert waiting is not None and running is not None
    assert admission.attach("CA2", "inbound") is running and running.attached
    clock.now += 29.9
    assert admission.live == 2
    clock.now += 0.2
    assert admission.live == 1 and waiting.released and not running.released
    clock.now += 3600  # an attached call holds its place however long it runs
    assert admission.live == 1
    running.release()
    assert admission.live == 0


async def test_a_socket_without_a_reservation_is_admitted_even_past_the_cap() -> None:
    _, admission = refusals()
    for sid in ("CA1", "CA2"):
        assert await admission.try_admit(sid, "inbound") is not None
    stray = admission.attach("CA9", "inbound")  # its webhook was answered by another instance
    assert stray.attached and admission.live == 3
    assert await admission.try_admit("CA3", "inbound") is None
    stray.release()
    assert admission.live == 2


async def test_the_carrier_reporting_a_call_over_frees_its_reservation_but_not_a_running_call() -> None:
    _, admission = refusals()
    ringing = await admission.try_admit("CA1", "outbound")
    talking = await admission.try_admit("CA2", "outbound")
    assert ringing is not None and talking is not None
    admission.attach("CA2", "outbound")
    admission.ended("CA1")
    admission.ended("CA2")
    assert ringing.released and not talking.released and admission.live == 1


async def test_an_outbound_reservation_is_rekeyed_to_the_call_id_the_carrier_gives() -> None:
    _, admission = refusals()
    ticket = await admission.try_admit("dial-1", "outbound")
    assert ticket is not None
    admission.rekey(ticket, "CA7")
    assert admission.get("CA7") is ticket and admission.get("dial-1") is None
    assert admission.attach("CA7", "outbound") is ticket


async def test_sustained_loop_lag_sheds_new_calls_and_a_lone_spike_does_not() -> None:
    driver = TickDriver()
    monitor = LoopLagMonitor(interval_s=0.1, window=3, clock=driver.clock, sleep=driver.sleep)
    seen: list[RefusalReason] = []
    admission = Admission(
        AdmissionLimits(max_loop_lag_s=0.2),
        monitor=monitor,
        on_refused=lambda _c, _d, reason: seen.append(reason),
    )
    admission.ensure_monitor()
    try:
        for lag in (0.0, 0.9, 0.0):  # one long pause (a GC, an import) among prompt ticks
            await driver.tick(monitor, lag)
        assert monitor.peak_s == pytest.approx(0.9)
        assert await admission.try_admit("CA1", "inbound") is not None
        for lag in (0.3, 0.4, 0.35):  # late at every tick: the loop is saturated
            await driver.tick(monitor, lag)
        assert monitor.lag_s == pytest.approx(0.3)
        assert await admission.try_admit("CA2", "inbound") is None
        assert seen == ["loop_lag"]
        health = await admission.health()
        assert health["accepting"] is False and health["refusing"] == "loop_lag"
        assert health["loop_lag_ms"] == pytest.approx(300.0)
        assert health["live_calls"] == 0 and health["reserved_calls"] == 1
        for lag in (0.01, 0.0, 0.02):  # caught up
            await driver.tick(monitor, lag)
        assert await admission.try_admit("CA2", "inbound") is not None
    finally:
        await admission.close()


async def test_the_monitor_measures_a_really_blocked_loop() -> None:
    monitor = LoopLagMonitor(interval_s=0.01, window=1)
    monitor.ensure_started()
    try:
        while monitor.samples == 0:
            await asyncio.sleep(0.005)
        time.sleep(0.3)  # noqa: ASYNC251 - the point: hold the loop for 300 ms
        seen = monitor.samples
        while monitor.samples == seen:
            await asyncio.sleep(0.005)
        # The tick that was due during the block ran at least 300 ms - one interval late.
        assert monitor.peak_s >= 0.29 - 0.01
    finally:
        await monitor.stop()
    assert not monitor.running


async def test_lag_shedding_is_off_with_a_zero_threshold() -> None:
    monitor = LoopLagMonitor(window=1)
    monitor.note(5.0)
    admission = Admission(AdmissionLimits(max_loop_lag_s=0), monitor=monitor)
    assert await admission.try_admit("CA1", "inbound") is not None
    assert not monitor.running  # nothing measured when nothing would be shed


async def test_health_reports_load_and_limits() -> None:
    admission = Admission(AdmissionLimits(max_calls=1, max_loop_lag_s=0.25))
    try:
        idle = await admission.health()
        assert idle["accepting"] is True and "refusing" not in idle
        assert idle["capacity"] == 1 and idle["max_loop_lag_ms"] == 250
        assert idle["refused_calls"] == {"capacity": 0, "loop_lag": 0, "fleet_capacity": 0}
        ticket = await admission.try_admit("CA1", "inbound")
        assert ticket is not None
        admission.attach("CA1", "inbound")
        await admission.try_admit("CA2", "inbound")
        full = await admission.health()
        assert full["accepting"] is False and full["refusing"] == "capacity"
        assert full["live_calls"] == 1 and full["reserved_calls"] == 0
        assert full["refused_calls"]["capacity"] == 1
    finally:
        await admission.close()


# ---- configuration ---------------------------------------------------------------------------------


def test_limits_come_from_parameters_else_the_environment() -> None:
    env = {"PATTER_MAX_CALLS": "40", "PATTER_FLEET_MAX_CALLS": "100", "PATTER_MAX_LOOP_LAG_MS": "350"}
    assert AdmissionLimits.resolve(env=env) == AdmissionLimits(40, 0.35, 100)
    assert AdmissionLimits.resolve(5, 9, env=env) == AdmissionLimits(5, 0.35, 9)
    assert AdmissionLimits.resolve(env={}) == AdmissionLimits(0, 0.2, 0)
    assert AdmissionLimits.resolve(env={"PATTER_MAX_CALLS": "0", "PATTER_MAX_LOOP_LAG_MS": "0"}) == (
        AdmissionLimits(0, 0.0, 0)
    )


@pytest.mark.parametrize("value", [0, -3])
def test_a_cap_below_one_is_refused_with_the_fix(value: int) -> None:
    with pytest.raises(PatterConfigError, match=r"max_concurrent_calls=.*at least 1.*None for no limit"):
        AdmissionLimits.resolve(value, env={})


@pytest.mark.parametrize("value", [True, 2.5, "10"])
def test_a_cap_of_the_wrong_type_is_refused(value: object) -> None:
    with pytest.raises(TypeError, match="fleet_max_concurrent_calls must be an int"):
        AdmissionLimits.resolve(None, value, env={})


@pytest.mark.parametrize("name", ["PATTER_MAX_CALLS", "PATTER_FLEET_MAX_CALLS", "PATTER_MAX_LOOP_LAG_MS"])
@pytest.mark.parametrize("raw", ["lots", "-1", "2.5"])
def test_a_malformed_environment_limit_is_an_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(PatterConfigError, match=rf"{name}='{raw}' is not a whole number"):
        AdmissionLimits.resolve(env={name: raw})
