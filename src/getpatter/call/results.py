"""What an outbound call tells its placer: the answering-machine verdict and the final result.

Both are frozen values handed to user code (``on_machine_detection`` and ``phone.call(wait=True)``), so
they hold only plain data. Each carrier maps its own vocabulary (answering-machine results, hang-up
causes) onto the small one here (``carriers/<name>/``), so every carrier reports the same words.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from getpatter.carriers.base import Classification

__all__ = [
    "TERMINAL_STATUSES",
    "CallResult",
    "Classification",
    "MachineDetectionResult",
    "Outcome",
    "outcome_for",
]

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
