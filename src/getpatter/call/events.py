"""Everything that happens in a call, as typed events.

The session only emits these; metrics, the dashboard, the call log, tracing and user callbacks only
listen (ARCHITECTURE.md). Times are ``time.time()`` seconds unless a field says otherwise, so observers
in other processes can compare them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from getpatter.metrics.model import CallMetrics

Role = Literal["user", "assistant", "tool"]
Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    call_id: str
    at: float = field(default_factory=time.time)

    @property
    def type(self) -> str:
        return _snake(type(self).__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(CallEvent):
    caller: str
    callee: str
    direction: Direction
    carrier: str
    provider_mode: str
    custom_params: dict[str, str] = field(default_factory=dict)
    #: The models and voices this call really runs (``metrics.describe.describe_agent`` of the per-call
    #: agent, after ``on_call_start`` overrides); ``{}`` when the emitter did not say.
    agent: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSpeechStarted(CallEvent):
    """Caller voice detected (local VAD)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserSpeechEnded(CallEvent):
    duration_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class UserTranscript(CallEvent):
    """Committed user turn text (what the agent answers to)."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentUtterance(CallEvent):
    """An agent reply that finished or was cut. ``text`` is what the caller actually heard."""

    text: str
    interrupted: bool = False
    full_text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupted(CallEvent):
    """Barge-in: the caller spoke over the agent and playback was stopped."""

    heard_text: str
    bargein_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(CallEvent):
    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCalled(CallEvent):
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult(CallEvent):
    name: str
    arguments: dict[str, Any]
    result: str
    is_error: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRecorded(CallEvent):
    """Billable usage in the provider's unit, for cost (API.md D.2)."""

    kind: Literal["stt", "tts", "llm", "realtime"]
    provider: str
    model: str = ""
    audio_seconds: float = 0.0
    characters: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnTimings:
    """Monotonic marks (seconds, ``time.monotonic()``) of one turn; None when the stage did not happen."""

    speech_started: float | None = None
    speech_ended: float | None = None
    transcript_final: float | None = None
    llm_dispatched: float | None = None
    llm_first_token: float | None = None
    llm_done: float | None = None
    first_sentence: float | None = None
    tts_first_byte: float | None = None
    first_audio_sent: float | None = None
    last_audio_sent: float | None = None
    barge_in_detected: float | None = None
    playback_stopped: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCompleted(CallEvent):
    turn_index: int
    user_text: str
    agent_text: str
    interrupted: bool
    timings: TurnTimings
    stt_audio_seconds: float = 0.0
    tts_characters: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(CallEvent):
    reason: str
    transcript: tuple[dict[str, Any], ...] = ()
    error_code: str | None = None
    duration_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CallSummary(CallEvent):
    """The finished call, measured: published once per call by the metrics collector, from its own
    ``CallEnded`` handler (so before ``CallEnded``'s ``emit`` returns). Everything that records a
    finished call with its cost and latency (dashboard store, call log, standalone-dashboard notifier,
    ``phone.call(wait=True)``) subscribes to this one event instead of reading ``ctx.metrics`` later."""

    ended: CallEnded
    metrics: CallMetrics


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorOccurred(CallEvent):
    error_code: str
    message: str
    recoverable: bool = True


def _snake(name: str) -> str:
    out: list[str] = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
