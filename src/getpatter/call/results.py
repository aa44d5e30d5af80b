"""What an outbound call tells its placer: the answering-machine verdict and the final result.

Both are frozen values handed to user code (``on_machine_detection`` and ``phone.call(wait=True)``), so
they hold only plain data. The carrier-specific vocabularies (Twilio ``AnsweredBy``, Telnyx AMD results
and hang-up causes, Twilio ``CallStatus``) are mapped onto one small vocabulary here, in pure functions,
so every carrier reports the same words and the mapping is testable without a network.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "TERMINAL_STATUSES",
    "CallResult",
    "Classification",
    "MachineDetectionResult",
    "Outcome",
    "classify_telnyx_amd",
    "classify_twilio_answered_by",
    "outcome_for",
    "status_for_telnyx_hangup",
]

Classification = Literal["human", "machine", "fax", "unknown"]
Outcome = Literal["answered", "voicemail", "no_answer", "busy", "failed"]

#: Call statuses after which nothing more happens on the call (Twilio's vocabulary, used for every carrier).
TERMINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True, slots=True)
class MachineDetectionResult:
    """The carrier's answering-machine verdict for one outbound call, reported once per call.

    ``classification`` is the carrier-neutral verdict; ``raw`` the carrier's own value (Twilio
    ``AnsweredBy`` such as ``machine_end_beep``, Telnyx ``result`` such as ``machine``) for users who
    need the detail; ``detected_at`` is ``time.time()`` when the verdict reached us.
    """

    call_id: str
    carrier: str
    classification: Classification
    raw: str
    detected_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class CallResult:
    """How an outbound call ended (``phone.call(..., wait=True)``).

    ``outcome`` is the one word a caller of the API branches on; ``status`` the last carrier status
    (``completed``, ``no-answer``, ``busy``, ``failed``, ``canceled``). ``duration_seconds`` is the
    carrier's billed call duration when it reported one, else our own measurement of the media session,
    else ``None`` (never answered). ``transcript`` is ``({"role", "text"}, ...)`` of the conversation;
    ``metrics`` the call's ``CallMetrics`` when the metrics observer produced one, and ``cost`` its cost.
    """

    call_id: str
    outcome: Outcome
    status: str
    duration_seconds: float | None = None
    transcript: tuple[dict[str, Any], ...] = ()
    cost: Any = None
    metrics: Any = None


def classify_twilio_answered_by(answered_by: str) -> Classification:
    """Twilio ``AnsweredBy`` (twilio.md §1.3) -> classification. Unknown values count as ``unknown``."""
    value = answered_by.strip().lower()
    if value == "human":
        return "human"
    if value.startswith("machine"):
        return "machine"
    if value == "fax":
        return "fax"
    return "unknown"


_TELNYX_AMD: dict[str, Classification] = {
    # call.machine.detection.ended
    "human": "human",
    "machine": "machine",
    "not_sure": "unknown",
    # call.machine.premium.detection.ended
    "human_residence": "human",
    "human_business": "human",
    "silence": "unknown",
    "fax_detected": "fax",
}


def classify_telnyx_amd(result: str) -> Classification:
    """Telnyx ``call.machine[.premium].detection.ended`` ``result`` -> classification (telnyx.md §3)."""
    return _TELNYX_AMD.get(result.strip().lower(), "unknown")


_TELNYX_HANGUP: dict[str, str] = {
    "timeout": "no-answer",
    "no_answer": "no-answer",
    "user_busy": "busy",
    # A callee who declines is reported as busy by carriers (SIP 486/603); the caller cannot tell apart.
    "call_rejected": "busy",
    "originator_cancel": "canceled",
    "not_found": "failed",
    "unspecified": "failed",
}


def status_for_telnyx_hangup(hangup_cause: str, *, answered: bool) -> str:
    """Telnyx ``call.hangup`` ``hangup_cause`` -> a Twilio-style terminal status.

    An answered call that ends for any reason has ``completed``; an unanswered one is classified by its
    cause, and a "normal" clearing before anyone answered counts as ``failed``.
    """
    if answered:
        return "completed"
    return _TELNYX_HANGUP.get(hangup_cause.strip().lower(), "failed")


def outcome_for(status: str, *, answered: bool, classification: Classification | None) -> Outcome:
    """The outcome of a call that reached terminal ``status``.

    A call answered by a machine (or a fax) is ``voicemail`` whether or not a message was left; other
    completed calls are ``answered``.
    """
    if status == "completed" or (answered and status not in ("busy", "no-answer")):
        if classification in ("machine", "fax"):
            return "voicemail"
        return "answered"
    if status == "no-answer":
        return "no_answer"
    if status == "busy":
        return "busy"
    return "failed"
