"""The documented event names of ``phone.events`` / ``EventBus.on(name, handler)``.

Every event class has one canonical name, its ``type`` (``UserTranscript`` -> ``"user_transcript"``).
The names of the docs' event list (API.md row 38) are aliases of the event that carries the same fact;
an alias may narrow its class (``"llm_metrics"`` is a ``UsageRecorded`` of an LLM or realtime model).
Names of events this build never emits are refused with what to use instead, so a subscription can
never be accepted and then silently never fire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from getpatter.call.events import (
    AgentUtterance,
    CallEnded,
    CallEvent,
    CallStarted,
    CallSummary,
    DtmfReceived,
    ErrorOccurred,
    Interrupted,
    ToolCalled,
    ToolResult,
    TurnCompleted,
    UsageRecorded,
    UserSpeechEnded,
    UserSpeechStarted,
    UserTranscript,
    _snake,
)
from getpatter.call.progress import (
    CallInitiated,
    CallRefused,
    CallStatusChanged,
    MachineDetected,
    RecordingSaved,
)
from getpatter.errors import PatterConfigError

__all__ = ["EVENT_CLASSES", "PatterEventType", "Subscription", "resolve_event_name", "valid_names"]

_ALL: tuple[type[CallEvent], ...] = (
    CallStarted,
    UserSpeechStarted,
    UserSpeechEnded,
    UserTranscript,
    AgentUtterance,
    Interrupted,
    DtmfReceived,
    ToolCalled,
    ToolResult,
    UsageRecorded,
    TurnCompleted,
    CallEnded,
    CallSummary,
    ErrorOccurred,
    CallInitiated,
    CallStatusChanged,
    MachineDetected,
    RecordingSaved,
    CallRefused,
)
#: Every event a call or the server emits, by canonical name (the event's ``type``).
EVENT_CLASSES: dict[str, type[CallEvent]] = {_snake(cls.__name__): cls for cls in _ALL}


def _usage_of(*kinds: str) -> Callable[[CallEvent], bool]:
    return lambda ev: isinstance(ev, UsageRecorded) and ev.kind in kinds


#: Documented aliases: name -> (event class, optional filter).
_ALIASES: dict[str, tuple[type[CallEvent], Callable[[CallEvent], bool] | None]] = {
    "transcript_final": (UserTranscript, None),
    "tool_call_started": (ToolCalled, None),
    "turn_started": (UserSpeechStarted, None),
    "turn_ended": (TurnCompleted, None),
    "interruption": (Interrupted, None),
    "metrics_collected": (CallSummary, None),
    "stt_metrics": (UsageRecorded, _usage_of("stt")),
    "llm_metrics": (UsageRecorded, _usage_of("llm", "realtime")),
    "tts_metrics": (UsageRecorded, _usage_of("tts")),
    "call_status": (CallStatusChanged, None),
    "machine_detection": (MachineDetected, None),
    "recording": (RecordingSaved, None),
}

#: Documented names this build does not emit, with what to subscribe to instead.
_NOT_EMITTED = {
    "transcript_partial": "only final transcripts are events; subscribe to 'transcript_final'",
    "llm_chunk": "LLM tokens are not events; use PipelineHooks(after_llm={'on_chunk': ...})",
    "tts_chunk": "TTS audio chunks are not events; use PipelineHooks(after_synthesize=...)",
    "eou_metrics": "end-of-utterance timing is in each 'turn_completed' (TurnCompleted.timings)",
}


class PatterEventType(StrEnum):
    """Every event name ``EventBus.on`` accepts: the canonical names, then the documented aliases."""

    CALL_STARTED = "call_started"
    USER_SPEECH_STARTED = "user_speech_started"
    USER_SPEECH_ENDED = "user_speech_ended"
    USER_TRANSCRIPT = "user_transcript"
    AGENT_UTTERANCE = "agent_utterance"
    INTERRUPTED = "interrupted"
    DTMF_RECEIVED = "dtmf_received"
    TOOL_CALLED = "tool_called"
    TOOL_RESULT = "tool_result"
    USAGE_RECORDED = "usage_recorded"
    TURN_COMPLETED = "turn_completed"
    CALL_ENDED = "call_ended"
    CALL_SUMMARY = "call_summary"
    ERROR_OCCURRED = "error_occurred"
    CALL_INITIATED = "call_initiated"
    CALL_STATUS_CHANGED = "call_status_changed"
    MACHINE_DETECTED = "machine_detected"
    RECORDING_SAVED = "recording_saved"
    CALL_REFUSED = "call_refused"
    TRANSCRIPT_FINAL = "transcript_final"
    TOOL_CALL_STARTED = "tool_call_started"
    TURN_STARTED = "turn_started"
    TURN_ENDED = "turn_ended"
    INTERRUPTION = "interruption"
    METRICS_COLLECTED = "metrics_collected"
    STT_METRICS = "stt_metrics"
    LLM_METRICS = "llm_metrics"
    TTS_METRICS = "tts_metrics"
    CALL_STATUS = "call_status"
    MACHINE_DETECTION = "machine_detection"
    RECORDING = "recording"


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a name resolves to: the class to subscribe to and an optional filter on its instances."""

    event_type: type[CallEvent]
    accepts: Callable[[CallEvent], bool] | None = None


def valid_names() -> list[str]:
    return sorted((*EVENT_CLASSES, *_ALIASES))


def resolve_event_name(name: str) -> Subscription:
    """The subscription for a documented event name; ``PatterConfigError`` listing the valid names."""
    key = str(name).strip().lower()
    if key in EVENT_CLASSES:
        return Subscription(EVENT_CLASSES[key])
    if key in _ALIASES:
        cls, accepts = _ALIASES[key]
        return Subscription(cls, accepts)
    if key in _NOT_EMITTED:
        raise PatterConfigError(f"event {name!r} is not emitted by getpatter: {_NOT_EMITTED[key]}.")
    raise PatterConfigError(
        f"unknown event name {name!r}. Fix: use an event class or one of: {', '.join(valid_names())}."
    )
