"""Admission control: a process takes calls while it can serve them and turns the rest away cleanly.

Three limits, any of which refuses a *new* call (calls already admitted are never touched):

* ``max_concurrent_calls`` (``serve()`` / ``asgi_app()``, else ``PATTER_MAX_CALLS``): calls this process
  holds at once;
* the event loop's sustained lag over ``PATTER_MAX_LOOP_LAG_MS`` (default 200 ms; ``0`` = off), measured
  by :class:`~getpatter.server.loop_lag.LoopLagMonitor`: the process is already late for the calls it
  has;
* ``fleet_max_concurrent_calls`` (``serve()``, else ``PATTER_FLEET_MAX_CALLS``, with ``redis_url``): calls
  the whole fleet holds, on Redis leases (``fleet/admission.py``).

A call is admitted with a :class:`Ticket` when its carrier asks us to answer (the voice webhook, Telnyx
``call.initiated``, ``phone.call()`` before it dials). The ticket is *reserved* until the call's media
socket starts, then *attached* to it and released when the call ends. A reservation whose socket never
comes (the caller hung up while it rang, the stream went to another instance) lapses after its hold time,
or at once when the carrier reports the call over. A socket that arrives without a reservation here (its
webhook was answered by another instance of a fleet) is attached anyway: the call is already answered,
and refusing it now would be the unclean refusal this module exists to avoid.

The carrier turns a refusal into its own terms (Twilio ``<Reject reason="busy"/>``, Telnyx ``reject`` with
``USER_BUSY``); every refusal is counted here by reason and reported through ``on_refused`` (the server
emits :class:`~getpatter.call.progress.CallRefused`), and :meth:`Admission.health` is what ``/health``
reports to a load balancer.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from getpatter.errors import PatterConfigError, PatterTypeError
from getpatter.server.loop_lag import LoopLagMonitor

__all__ = [
    "DEFAULT_MAX_LOOP_LAG_MS",
    "Admission",
    "AdmissionLimits",
    "FleetSeats",
    "RefusalReason",
    "Ticket",
]

log = logging.getLogger("getpatter.server")

Direction = Literal["inbound", "outbound"]
#: Why a call was refused: this process is full, its event loop is behind, or the fleet is full.
RefusalReason = Literal["capacity", "loop_lag", "fleet_capacity"]

DEFAULT_MAX_LOOP_LAG_MS = 200
#: How long an inbound call's reservation waits for its media socket (carriers connect within seconds).
INBOUND_HOLD_S = 30.0
#: Added to an outbound call's ring time: the callee may answer at the last ring.
OUTBOUND_HOLD_MARGIN_S = 30.0

ENV_MAX_CALLS = "PATTER_MAX_CALLS"
ENV_FLEET_MAX_CALLS = "PATTER_FLEET_MAX_CALLS"
ENV_MAX_LOOP_LAG_MS = "PATTER_MAX_LOOP_LAG_MS"


class FleetSeats(Protocol):
    """The fleet-wide count of calls (``fleet/admission.py``), as admission uses it."""

    limit: int

    async def acquire(self, call_id: str, *, force: bool = False) -> bool:
        """Take a seat for ``call_id``; ``False`` when the fleet is full (``force``: take it anyway).
        When the fleet's store cannot be reached it answers ``True``: this process decides alone."""
        ...

    async def release(self, call_id: str) -> None: ...

    async def live(self) -> int | None:
        """Seats taken across the fleet (``None``: unknown right now)."""
        ...


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise PatterConfigError(
            f"{name}={raw!r} is not a whole number >= 0. Fix: e.g. {name}=50, or 0 for no limit "
            "(unset it for the default)."
        )
    return value


def _param(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PatterTypeError(f"{name} must be an int (or None), got {type(value).__name__}")
    if value < 1:
        raise PatterConfigError(
            f"{name}={value} must be at least 1. Fix: pass the most calls to hold at once, or None for "
            "no limit."
        )
    return value


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The limits one server admits calls under (``0`` = that limit is off)."""

    max_calls: int = 0
    max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_MS / 1000
    fleet_max_calls: int = 0

    @classmethod
    def resolve(
        cls,
        max_concurrent_calls: object = None,
        fleet_max_concurrent_calls: object = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> AdmissionLimits:
        """The parameters when given, else ``PATTER_MAX_CALLS`` / ``PATTER_FLEET_MAX_CALLS`` (unset or
        ``0``: no limit); ``PATTER_MAX_LOOP_LAG_MS`` (default 200, ``0`` = no lag shedding). A parameter
        below 1 or an environment value that is not a whole number raises :class:`PatterConfigError`."""
        environ = os.environ if env is None else env
        own = _param(max_concurrent_calls, "max_concurrent_calls")
        fleet = _param(fleet_max_concurrent_calls, "fleet_max_concurrent_calls")
        lag_ms = _env_int(environ, ENV_MAX_LOOP_LAG_MS, DEFAULT_MAX_LOOP_LAG_MS)
        return cls(
            max_calls=own if own is not None else _env_int(environ, ENV_MAX_CALLS, 0),
            max_loop_lag_s=lag_ms / 1000,
            fleet_max_calls=fleet if fleet is not None else _env_int(environ, ENV_FLEET_MAX_CALLS, 0),
        )


class Ticket:
    """One admitted call's place. :meth:`release` (idempotent) gives it back when the call is over."""

    __slots__ = ("_admission", "attached", "call_id", "deadline", "direction", "released")

    def __init__(self, admission: Admission, call_id: str, direction: Direction, deadline: float | None):
        self._admission = admission
        self.call_id = call_id
        self.direction: Direction = direction
        #: Monotonic time at which an unattached reservation lapses (``None`` once attached).
        self.deadline = deadline
        self.attached = False
        self.released = False

    def __repr__(self) -> str:
        state = "released" if self.released else "attached" if self.attached else "reserved"
        return f"Ticket({self.call_id!r}, {self.direction}, {state})"

    def release(self) -> None:
        self._admission._release(self)


class Admission:
    """One server's admission (see the module docstring). ``on_refused(call_id, direction, reason)`` is
    told of every refusal; ``clock`` is monotonic seconds (a parameter for tests)."""

    def __init__(
        self,
        limits: AdmissionLimits | None = None,
        *,
        monitor: LoopLagMonitor | None = None,
        on_refused: Callable[[str, Direction, RefusalReason], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits if limits is not None else AdmissionLimits()
        self.monitor = monitor if monitor is not None else LoopLagMonitor()
        self.on_refused = on_refused
        self._clock = clock
        self._tickets: dict[str, Ticket] = {}
        self._fleet: FleetSeats | None = None
        self._background: set[asyncio.Task[Any]] = set()
        #: Refused calls since start, by reason.
        self.refused: collections.Counter[str] = collections.Counter()
        #: Calls admitted since start.
        self.admitted = 0
        #: The reason of the latest refusal (``""``: none yet).
        self.last_refusal: str = ""

    # ---- the fleet ---------------------------------------------------------------------------------
    @property
    def fleet(self) -> FleetSeats | None:
        return self._fleet

    def join_fleet(self, seats: FleetSeats | None) -> None:
        """Count calls fleet-wide through ``seats`` (``None``: leave the fleet). Calls held now take a
        seat at once, so the fleet's count includes them."""
        self._fleet = seats
        if seats is not None:
            for ticket in list(self._tickets.values()):
                self._spawn(seats.acquire(ticket.call_id, force=True))

    # ---- reading -----------------------------------------------------------------------------------
    @property
    def live(self) -> int:
        """Calls held: attached to a media socket, or reserved for one that has not arrived yet."""
        self._sweep()
        return len(self._tickets)

    @property
    def loop_lag_s(self) -> float:
        return self.monitor.lag_s

    def ensure_monitor(self) -> None:
        """Start measuring the loop's lag (idempotent); a no-op when lag shedding is off."""
        if self.limits.max_loop_lag_s > 0:
            self.monitor.ensure_started()

    def refusal(self) -> RefusalReason | None:
        """Why a new call would be refused by this process right now (``None``: it would be admitted)."""
        self.ensure_monitor()
        if self.limits.max_calls and self.live >= self.limits.max_calls:
            return "capacity"
        if self.limits.max_loop_lag_s > 0 and self.monitor.lag_s > self.limits.max_loop_lag_s:
            return "loop_lag"
        return None

    def get(self, call_id: str) -> Ticket | None:
        return self._tickets.get(call_id)

    # ---- admitting ---------------------------------------------------------------------------------
    async def try_admit(
        self, call_id: str, direction: Direction, *, hold_s: float = INBOUND_HOLD_S
    ) -> Ticket | None:
        """A ticket for a new call, or ``None`` when it must be refused (counted, and reported to
        ``on_refused``). ``hold_s``: how long the reservation waits for the call's media socket. A call
        that already holds a ticket (a carrier retrying its webhook) gets the same one."""
        existing = self._tickets.get(call_id)
        if existing is not None and not existing.released:
            return existing
        reason = self.refusal()
        if reason is not None:
            self._refuse(call_id, direction, reason)
            return None
        ticket = self._add(call_id, direction, self._clock() + hold_s)
        fleet = self._fleet
        if fleet is not None and not await fleet.acquire(call_id):
            self._tickets.pop(call_id, None)
            ticket.released = True
            self._refuse(call_id, direction, "fleet_capacity")
            return None
        self.admitted += 1
        return ticket

    def attach(self, call_id: str, direction: Direction) -> Ticket:
        """The call's media socket started: its ticket now lives until the call ends. A socket with no
        reservation here is admitted as it is (the call is already answered; see the module docs)."""
        ticket = self._tickets.get(call_id)
        if ticket is None or ticket.released:
            ticket = self._add(call_id, direction, None)
            self.admitted += 1
            if self._fleet is not None:
                self._spawn(self._fleet.acquire(call_id, force=True))
        ticket.attached, ticket.deadline = True, None
        self.ensure_monitor()
        return ticket

    def rekey(self, ticket: Ticket, call_id: str) -> None:
        """An outbound call's reservation, made before the carrier named the call, now knows its id."""
        old = ticket.call_id
        if ticket.released or old == call_id:
            return
        self._tickets.pop(old, None)
        ticket.call_id = call_id
        self._tickets[call_id] = ticket
        if self._fleet is not None:
            self._spawn(self._swap_seat(self._fleet, old, call_id))

    def ended(self, call_id: str) -> None:
        """The carrier says the call is over: a reservation still waiting for its socket is released
        (an attached ticket is released by its session)."""
        ticket = self._tickets.get(call_id)
        if ticket is not None and not ticket.attached:
            ticket.release()

    # ---- reporting ---------------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """What ``/health`` reports: load, limits, whether a new call would be admitted, refusals."""
        reason = self.refusal()
        if reason is None and self._fleet is not None:
            fleet_live = await self._fleet.live()
            if fleet_live is not None and fleet_live >= self._fleet.limit:
                reason = "fleet_capacity"
        else:
            fleet_live = await self._fleet.live() if self._fleet is not None else None
        attached = sum(1 for t in self._tickets.values() if t.attached)
        report: dict[str, Any] = {
            "accepting": reason is None,
            "live_calls": attached,
            "reserved_calls": len(self._tickets) - attached,
            "capacity": self.limits.max_calls or None,
            "loop_lag_ms": round(self.monitor.lag_s * 1000, 1),
            "max_loop_lag_ms": round(self.limits.max_loop_lag_s * 1000) or None,
            "refused_calls": {r: self.refused[r] for r in ("capacity", "loop_lag", "fleet_capacity")},
        }
        if reason is not None:
            report["refusing"] = reason
        if self._fleet is not None:
            report["fleet"] = {"live_calls": fleet_live, "capacity": self._fleet.limit}
        return report

    # ---- internals ---------------------------------------------------------------------------------
    def _add(self, call_id: str, direction: Direction, deadline: float | None) -> Ticket:
        ticket = Ticket(self, call_id, direction, deadline)
        self._tickets[call_id] = ticket
        return ticket

    def _refuse(self, call_id: str, direction: Direction, reason: RefusalReason) -> None:
        self.refused[reason] += 1
        self.last_refusal = reason
        if sum(self.refused.values()) == 1:
            log.warning(
                "call %s refused (%s): this server is at its limit; further refusals are counted in "
                "/health and on the dashboard",
                call_id,
                reason,
            )
        else:
            log.info("call %s refused (%s)", call_id, reason)
        if self.on_refused is not None:
            try:
                self.on_refused(call_id, direction, reason)
            except Exception:
                log.exception("reporting the refusal of call %s failed", call_id)

    def _release(self, ticket: Ticket) -> None:
        if ticket.released:
            return
        ticket.released = True
        if self._tickets.get(ticket.call_id) is ticket:
            del self._tickets[ticket.call_id]
        if self._fleet is not None:
            self._spawn(self._fleet.release(ticket.call_id))

    def _sweep(self) -> None:
        now = self._clock()
        lapsed = [t for t in self._tickets.values() if t.deadline is not None and t.deadline <= now]
        for ticket in lapsed:
            log.info("call %s: no media socket came for its reservation; released", ticket.call_id)
            ticket.release()

    @staticmethod
    async def _swap_seat(fleet: FleetSeats, old: str, new: str) -> None:
        await fleet.acquire(new, force=True)
        await fleet.release(old)

    def _spawn(self, coro: Any) -> None:
        async def guarded() -> None:
            try:
                await coro
            except Exception as exc:
                log.warning("fleet admission update failed: %s", exc)

        try:
            task = asyncio.get_running_loop().create_task(guarded())
        except RuntimeError:
            coro.close()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Stop the lag monitor and wait (briefly) for fleet updates still in flight."""
        await self.monitor.stop()
        if self._background:
            await asyncio.wait(set(self._background), timeout=2.0)
