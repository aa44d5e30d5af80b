"""The server's book of outbound calls: options per call, status, AMD verdict, and the result future.

``phone.call()`` registers each call it places (call id -> options). The carrier's callbacks (status,
answering-machine detection) and the call's media session then update the same record, and the record
resolves ``wait=True`` once the call is over *and* its media session (if any) has ended, so the result
carries the transcript. The session finds its per-call agent and first message here too.

Stateless instances: what a call needs to run on another instance (direction, first message) also
travels in the carrier's stream parameters; :meth:`OutboundRegistry.agent_for` falls back to them when
this instance did not place the call. Callbacks for unknown call ids still update a record created on
the fly (a status can even arrive before the dial request has returned), and finished records are kept, a
bounded number, for late callbacks.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from getpatter._tasks import BackgroundTasks
from getpatter.call.agent_spec import Agent
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import CallSummary
from getpatter.call.progress import CallStatusChanged, MachineDetected
from getpatter.call.results import (
    TERMINAL_STATUSES,
    CallResult,
    Classification,
    MachineDetectionResult,
    outcome_for,
)
from getpatter.carriers.base import DIRECTION_PARAM, FIRST_MESSAGE_PARAM
from getpatter.errors import PatterConnectionError

__all__ = [
    "MEDIA_GRACE_S",
    "STATUS_GRACE_S",
    "OutboundCall",
    "OutboundRegistry",
]

log = logging.getLogger("getpatter.outbound")

#: After the terminal status, how long to wait for the media session to end (for its transcript).
MEDIA_GRACE_S = 10.0
#: After the media session ended, how long to wait for the carrier's terminal status before assuming
#: ``completed`` (a status callback that never comes must not hang ``wait=True`` forever).
STATUS_GRACE_S = 30.0
#: Finished records kept for late callbacks (recordings, out-of-order statuses).
KEEP_FINISHED = 1024

Callback = Callable[..., Any]


@dataclass(slots=True)
class OutboundCall:
    """One placed call: what ``phone.call()`` asked for, and what the carrier has said since."""

    call_id: str
    carrier: str
    to: str = ""
    from_: str = ""
    agent: Agent | None = None
    first_message: str = ""
    voicemail_message: str = ""
    machine_detection: bool = False
    on_machine_detection: Callback | None = None
    placed: bool = False
    status: str = "queued"
    sequence: int = -1
    answered: bool = False
    answered_mono: float | None = None
    machine: MachineDetectionResult | None = None
    voicemail_started: bool = False
    carrier_duration: float | None = None
    media_started: bool = False
    media_ended: bool = False
    media_duration: float | None = None
    transcript: tuple[dict[str, Any], ...] = ()
    metrics: Any = None  # the media session's CallMetrics, from its CallSummary
    #: The call's cost when its media session ran on another instance of a fleet (no CallMetrics here).
    cost: Any = None
    ctx: CallContext | None = None
    #: Nonce of the stream token handed to the carrier in the dial request (it was minted before the call
    #: had an id, so the socket's token is tied to the call here); ``""`` when the dial carried none.
    stream_nonce: str = ""
    result: asyncio.Future[CallResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    timer: asyncio.TimerHandle | None = None


class OutboundRegistry:
    """Outbound calls of one server (see the module docstring). ``events`` is the server-level bus
    on which status changes and AMD verdicts are emitted."""

    def __init__(self, events: EventBus, default_voicemail: str = "") -> None:
        self.events = events
        #: ``serve(voicemail_message=...)``: left on a machine when the call gave none of its own.
        self.default_voicemail = default_voicemail
        self._calls: collections.OrderedDict[str, OutboundCall] = collections.OrderedDict()
        self._tasks = BackgroundTasks(log)
        #: Set once the server stopped: no new calls; pending ``wait=True`` results fail.
        self.closed = False
        #: Called with each call ``phone.call()`` registers (a fleet records which instance placed it).
        self.placed_hooks: list[Callable[[OutboundCall], None]] = []

    # ---- records -------------------------------------------------------------------------------------
    def get(self, call_id: str) -> OutboundCall | None:
        return self._calls.get(call_id)

    def pending_ids(self) -> list[str]:
        """Calls placed here whose result is still open."""
        return [k for k, r in self._calls.items() if r.placed and not r.result.done()]

    def stream_nonce(self, call_id: str) -> str:
        """The nonce of the stream token this instance dialled ``call_id`` with (``""``: none known)."""
        record = self._calls.get(call_id)
        return record.stream_nonce if record is not None else ""

    def _record(self, call_id: str, carrier: str) -> OutboundCall:
        record = self._calls.get(call_id)
        if record is None:
            record = self._calls[call_id] = OutboundCall(call_id=call_id, carrier=carrier)
            self._evict()
        return record

    def _evict(self) -> None:
        finished = [k for k, r in self._calls.items() if r.result.done()]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._calls[key]

    def register(
        self,
        call_id: str,
        carrier: str,
        *,
        to: str,
        from_: str,
        agent: Agent | None,
        first_message: str,
        voicemail_message: str,
        machine_detection: bool,
        on_machine_detection: Callback | None,
    ) -> OutboundCall:
        """Record a call ``phone.call()`` just placed. Callbacks that arrived first are kept."""
        record = self._record(call_id, carrier)
        record.to, record.from_, record.agent = to, from_, agent
        record.first_message, record.voicemail_message = first_message, voicemail_message
        record.machine_detection, record.on_machine_detection = machine_detection, on_machine_detection
        record.placed = True
        if record.machine is not None and on_machine_detection is not None:
            self._notify(record, record.machine)  # the verdict beat the registration
        for hook in self.placed_hooks:
            hook(record)
        return record

    def voicemail_for(self, call_id: str) -> str:
        """The message to leave on a machine: the call's own, else the server default, else ``""``."""
        record = self._calls.get(call_id)
        own = record.voicemail_message if record is not None else ""
        return own or self.default_voicemail

    def agent_for(self, call_id: str, params: Mapping[str, str], served: Agent) -> Agent:
        """The agent a starting media session runs: the one ``phone.call(agent=...)`` chose (else the
        served one), with the call's ``first_message`` when it gave one. Calls placed by another
        instance carry the first message in their stream parameters."""
        record = self._calls.get(call_id)
        if record is not None and record.placed:
            agent, first = record.agent or served, record.first_message
        elif params.get(DIRECTION_PARAM) == "outbound":
            agent, first = served, params.get(FIRST_MESSAGE_PARAM, "")
        else:
            return served
        return replace(agent, first_message=first) if first else agent

    # ---- carrier callbacks ---------------------------------------------------------------------------
    def status(
        self,
        call_id: str,
        carrier: str,
        status: str,
        *,
        raw: str = "",
        direction: str = "outbound",
        sequence: int | None = None,
        duration_seconds: float | None = None,
    ) -> None:
        """A status callback. Out-of-order deliveries (lower ``sequence``) are emitted but do not move
        the call backwards, and nothing moves a call out of a terminal status."""
        record = self._record(call_id, carrier)
        previous = record.status
        self.events.emit(
            CallStatusChanged(
                call_id=call_id,
                carrier=carrier,
                status=status,
                previous=previous,
                direction=direction,
                raw=raw or status,
                sequence=sequence,
                duration_seconds=duration_seconds,
            )
        )
        if duration_seconds is not None:
            record.carrier_duration = duration_seconds
        if status == "in-progress" and not record.answered:
            record.answered, record.answered_mono = True, time.monotonic()
        stale = sequence is not None and sequence < record.sequence
        if previous in TERMINAL_STATUSES or (stale and status not in TERMINAL_STATUSES):
            return
        if sequence is not None:
            record.sequence = max(record.sequence, sequence)
        record.status = status
        log.info("%s call %s: %s -> %s", carrier, call_id, previous, status)
        self._maybe_finish(record)

    def machine_detected(
        self, call_id: str, carrier: str, classification: Classification, raw: str
    ) -> MachineDetectionResult | None:
        """Record the AMD verdict and hand it to ``on_machine_detection``; ``None`` when this call
        already has one (carriers may report twice, e.g. detection then greeting end)."""
        record = self._record(call_id, carrier)
        if record.machine is not None:
            return None
        result = MachineDetectionResult(call_id, carrier, classification, raw)
        record.machine = result
        log.info("%s call %s answered by %s (%s)", carrier, call_id, classification, raw)
        self.events.emit(MachineDetected(call_id=call_id, result=result))
        if record.on_machine_detection is not None:
            self._notify(record, result)
        return result

    def _notify(self, record: OutboundCall, result: MachineDetectionResult) -> None:
        callback = record.on_machine_detection
        if callback is None:
            return
        try:
            value = callback(result)
        except Exception:
            log.exception("on_machine_detection failed for call %s", record.call_id)
            return
        if inspect.isawaitable(value):
            self.spawn(_awaited(value), f"on_machine_detection of call {record.call_id}")

    # ---- media sessions ------------------------------------------------------------------------------
    def observe(self, bus: EventBus, ctx: CallContext) -> None:
        """Session observer (``CallRuntime.observers``): tie outbound records to their media session."""
        record = self._calls.get(ctx.call_id)
        if record is None:
            return
        record.media_started, record.ctx = True, ctx

        def ended(summary: CallSummary) -> None:
            record.metrics = summary.metrics
            self._media_ended(record, summary.ended.transcript, summary.ended.duration_seconds)

        bus.on(CallSummary, ended)

    def media_started_elsewhere(self, call_id: str) -> None:
        """The media session of a call placed here started on another instance of the fleet."""
        record = self._calls.get(call_id)
        if record is not None and not record.media_ended:
            record.media_started = True

    def media_ended_elsewhere(
        self,
        call_id: str,
        transcript: tuple[dict[str, Any], ...],
        duration_seconds: float | None,
        cost: Any = None,
    ) -> None:
        """That media session ended (with its transcript): the call's result may now resolve."""
        record = self._calls.get(call_id)
        if record is None or record.media_ended:
            return
        record.media_started, record.cost = True, cost
        self._media_ended(record, transcript, duration_seconds)

    def _media_ended(
        self, record: OutboundCall, transcript: tuple[dict[str, Any], ...], duration: float | None
    ) -> None:
        record.media_ended = True
        record.media_duration = duration
        record.transcript = transcript
        if record.status in TERMINAL_STATUSES:
            self._maybe_finish(record)
        elif record.timer is None:
            record.timer = asyncio.get_running_loop().call_later(
                STATUS_GRACE_S, self._finish, record, "completed"
            )

    # ---- results -------------------------------------------------------------------------------------
    def _maybe_finish(self, record: OutboundCall) -> None:
        if record.result.done() or record.status not in TERMINAL_STATUSES:
            return
        if record.media_started and not record.media_ended:
            if record.timer is None:
                record.timer = asyncio.get_running_loop().call_later(MEDIA_GRACE_S, self._finish, record)
            return
        self._finish(record)

    def _finish(self, record: OutboundCall, assumed_status: str | None = None) -> None:
        if record.timer is not None:
            record.timer.cancel()
            record.timer = None
        if record.result.done():
            return
        if assumed_status is not None and record.status not in TERMINAL_STATUSES:
            log.warning(
                "call %s: no terminal status from %s; assuming %s",
                record.call_id,
                record.carrier,
                assumed_status,
            )
            record.status = assumed_status
        classification = record.machine.classification if record.machine is not None else None
        answered = record.answered or record.media_started
        duration = record.carrier_duration if record.carrier_duration is not None else record.media_duration
        metrics = record.metrics
        record.result.set_result(
            CallResult(
                call_id=record.call_id,
                outcome=outcome_for(record.status, answered=answered, classification=classification),
                status=record.status,
                duration_seconds=duration,
                transcript=record.transcript,
                cost=getattr(metrics, "cost", None) if metrics is not None else record.cost,
                metrics=metrics,
            )
        )

    # ---- background work -----------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """Run carrier reactions (REST commands) after the webhook has been answered; failures are logged."""

        self._tasks.spawn(coro, what)

    def close(self) -> None:
        """The server stopped: its callbacks will not come, so fail every pending ``wait=True``."""
        self.closed = True
        for record in self._calls.values():
            if record.timer is not None:
                record.timer.cancel()
                record.timer = None
            if not record.result.done():
                record.result.set_exception(
                    PatterConnectionError(f"the server stopped before call {record.call_id} ended")
                )
                record.result.exception()  # retrieved: nobody may be waiting on it

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for carrier reactions still running (tests, shutdown)."""
        await self._tasks.wait(timeout)


async def _awaited(value: Any) -> None:
    await value
