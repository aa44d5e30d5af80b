"""Call-progress events that come from the carrier's webhooks rather than from a media session.

A status change (``ringing``, ``no-answer``...), an answering-machine verdict or a saved recording can
arrive before a call has any media session, or after it ended, so these are emitted on the server-level
:class:`~getpatter.call.bus.EventBus` (``ServerState.events``), not on a session's bus. Observers that
care (dashboard, call log) subscribe there and join on ``call_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from getpatter.call.events import CallEvent
from getpatter.call.results import MachineDetectionResult

__all__ = ["CallInitiated", "CallRefused", "CallStatusChanged", "MachineDetected", "RecordingSaved"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInitiated(CallEvent):
    """``phone.call()`` dialled and the carrier accepted the call (it has an id, nothing rang yet)."""

    carrier: str
    to: str
    from_: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStatusChanged(CallEvent):
    """The carrier reported a new status. ``status`` uses Twilio's words for every carrier
    (``initiated``, ``ringing``, ``in-progress``, ``completed``, ``busy``, ``failed``, ``no-answer``,
    ``canceled``); ``raw`` is the carrier's own value (Twilio ``CallStatus``, Telnyx event type or
    hang-up cause). ``sequence`` is Twilio's ``SequenceNumber`` when given."""

    carrier: str
    status: str
    previous: str = ""
    direction: str = "outbound"
    raw: str = ""
    sequence: int | None = None
    duration_seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineDetected(CallEvent):
    """The answering-machine verdict of an outbound call (once per call)."""

    result: MachineDetectionResult


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingSaved(CallEvent):
    """A carrier recording of the call is available (Twilio recording callback, Telnyx
    ``call.recording.saved``). ``url`` is where to fetch it (Twilio needs Basic auth; Telnyx URLs expire
    after ~10 minutes); ``details`` keeps the carrier's remaining fields."""

    carrier: str
    url: str
    recording_id: str = ""
    status: str = "completed"
    duration_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRefused(CallEvent):
    """A new call was turned away because the server was at its limit (``server/admission.py``): an
    inbound call got the carrier's busy refusal, an outbound ``phone.call()`` was not dialled. ``reason``:
    ``capacity`` (``max_concurrent_calls``), ``loop_lag`` (the event loop was behind) or
    ``fleet_capacity`` (``fleet_max_concurrent_calls``)."""

    carrier: str
    direction: str
    reason: str
