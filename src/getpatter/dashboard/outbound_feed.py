"""Outbound calls on the dashboard from the moment they are dialled, whether or not anyone answers.

A placed call's life before (and without) media is told only on the server-level bus (``phone.events``):
``CallInitiated`` when ``phone.call()`` dialled, ``CallStatusChanged`` for every carrier status callback
(Twilio ``ringing``/``in-progress``/``no-answer``/``busy``/``failed``/``canceled``/``completed``, Telnyx
``call.initiated``/``call.answered``/``call.hangup`` mapped to the same words) and ``MachineDetected``.
This feed turns them into the store's ``call_initiated`` / ``call_status`` records and SSE events. A call
that ends without ever reaching media (no answer, busy, failed...) is completed by the store with zero
cost, and its call log (``metadata.json``) is written here, so it is in history, the call logs and the
exports like any other call; a call that did reach media is completed by its ``CallSummary`` as usual.
Callbacks about calls this process did not dial are ignored: a webhook is not a call, and must not
create a dashboard record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from getpatter.call.bus import EventBus
from getpatter.call.progress import CallInitiated, CallStatusChanged, MachineDetected
from getpatter.call.results import TERMINAL_STATUSES

if TYPE_CHECKING:
    from getpatter.dashboard.persistence import CallLogWriter
    from getpatter.dashboard.store import MetricsStore

__all__ = ["feed_outbound_calls"]


def feed_outbound_calls(
    events: EventBus, store: MetricsStore, writer: CallLogWriter | None = None
) -> Callable[[], None]:
    """Subscribe ``store`` (and ``writer``, for calls that never reach media) to ``events``; returns
    the function that unsubscribes them all."""

    def initiated(ev: CallInitiated) -> None:
        parties = {"caller": ev.from_, "callee": ev.to}
        record = store.get_call(ev.call_id)
        if record is None:
            store.record_call_initiated(
                {
                    "call_id": ev.call_id,
                    "direction": "outbound",
                    "started_at": ev.at,
                    "telephony_provider": ev.carrier,
                    **parties,
                }
            )
        else:  # a reused id (the record is known): keep its status, add who was called
            store.update_call_status(ev.call_id, str(record.get("status") or "initiated"), **parties)

    sequences: dict[str, int] = {}  # Twilio SequenceNumber seen per live call (out-of-order callbacks)

    def status(ev: CallStatusChanged) -> None:
        # The registry reports every callback, also those that cannot move the call (it was already
        # over, or an older one arriving late); the dashboard follows the registry's rules.
        if (
            ev.direction != "outbound"
            or ev.previous in TERMINAL_STATUSES
            or store.get_call(ev.call_id) is None
        ):
            return  # a callback is not a call: only calls placed here (CallInitiated) are followed
        final = ev.status in TERMINAL_STATUSES
        if ev.sequence is not None:
            if ev.sequence < sequences.get(ev.call_id, -1) and not final:
                return
            sequences[ev.call_id] = max(ev.sequence, sequences.get(ev.call_id, -1))
        if final:
            sequences.pop(ev.call_id, None)
        extra: dict[str, Any] = {}
        if ev.duration_seconds is not None:
            extra["duration_seconds"] = ev.duration_seconds
        finished = store.update_call_status(ev.call_id, ev.status, **extra)
        if finished is not None and writer is not None and writer.enabled:
            writer.record_unconnected(finished)

    def machine(ev: MachineDetected) -> None:
        record = store.get_call(ev.call_id)
        if record is None:
            return
        store.update_call_status(
            ev.call_id, str(record.get("status") or "in-progress"), answered_by=ev.result.classification
        )

    offs = [
        events.on(CallInitiated, initiated),
        events.on(CallStatusChanged, status),
        events.on(MachineDetected, machine),
    ]

    def unsubscribe() -> None:
        for off in offs:
            off()

    return unsubscribe
