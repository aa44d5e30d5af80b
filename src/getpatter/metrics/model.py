"""The metrics data model of API.md D.1: what one turn and one call cost and how long they took.

Every class is a frozen dataclass so a ``CallMetrics`` handed to ``on_call_end`` can be shared with the
dashboard store and the call log without anyone mutating it. ``to_dict()`` gives the JSON shape used by
the store, the REST API and ``metadata.json`` (plain floats/ints/strings/None, nested dicts and lists).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: ``agent_text`` of a turn the caller cut off before hearing any of the answer.
INTERRUPTED_TEXT = "[interrupted]"


@dataclass(frozen=True, slots=True)
class LatencyBreakdown:
    """Milliseconds spent in each stage of one turn (or an aggregate of turns).

    The four always-present fields (``stt_ms``, ``llm_ms``, ``tts_ms``, ``total_ms``) are 0 when the stage
    was not measured; the optional fields are ``None`` instead, so "not measured" and "instant" differ.
    """

    stt_ms: float = 0.0
    llm_ms: float = 0.0
    tts_ms: float = 0.0
    total_ms: float = 0.0
    endpoint_ms: float | None = None
    llm_ttft_ms: float | None = None
    llm_total_ms: float | None = None
    tts_total_ms: float | None = None
    bargein_ms: float | None = None
    user_speech_duration_ms: float | None = None
    agent_response_ms: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


#: Fields of ``LatencyBreakdown`` that are always numbers (0 = not measured).
REQUIRED_LATENCY_FIELDS: tuple[str, ...] = ("stt_ms", "llm_ms", "tts_ms", "total_ms")
#: Fields of ``LatencyBreakdown`` that are ``None`` when not measured.
OPTIONAL_LATENCY_FIELDS: tuple[str, ...] = (
    "endpoint_ms",
    "llm_ttft_ms",
    "llm_total_ms",
    "tts_total_ms",
    "bargein_ms",
    "user_speech_duration_ms",
    "agent_response_ms",
)


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    """One user -> agent exchange. ``turn_index`` is 0-based; the greeting is turn 0 when there is one.

    ``agent_text`` is what the caller actually heard, or ``"[interrupted]"`` when they heard none of it.
    ``timestamp`` is unix seconds of the turn's completion.
    """

    turn_index: int
    user_text: str
    agent_text: str
    latency: LatencyBreakdown
    stt_audio_seconds: float = 0.0
    tts_characters: int = 0
    timestamp: float = 0.0

    @property
    def interrupted(self) -> bool:
        return self.agent_text == INTERRUPTED_TEXT

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn_index": self.turn_index,
            "user_text": self.user_text,
            "agent_text": self.agent_text,
            "latency": self.latency.to_dict(),
            "stt_audio_seconds": self.stt_audio_seconds,
            "tts_characters": self.tts_characters,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Estimated USD per component, each rounded to 6 decimals.

    ``llm`` is already net of prompt-cache discounts; ``llm_cached_savings`` says how much those saved.
    """

    stt: float = 0.0
    tts: float = 0.0
    llm: float = 0.0
    telephony: float = 0.0
    total: float = 0.0
    llm_cached_savings: float = 0.0

    @classmethod
    def of(
        cls,
        *,
        stt: float = 0.0,
        tts: float = 0.0,
        llm: float = 0.0,
        telephony: float = 0.0,
        savings: float = 0.0,
    ) -> CostBreakdown:
        """Build one with ``total`` as the rounded sum of the four components."""
        stt, tts, llm, telephony = (round(v, 6) for v in (stt, tts, llm, telephony))
        return cls(
            stt=stt,
            tts=tts,
            llm=llm,
            telephony=telephony,
            total=round(stt + tts + llm + telephony, 6),
            llm_cached_savings=round(savings, 6),
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CallMetrics:
    """Everything measured about one call; handed to ``on_call_end`` as ``metrics``."""

    call_id: str
    duration_seconds: float
    turns: tuple[TurnMetrics, ...] = ()
    cost: CostBreakdown = field(default_factory=CostBreakdown)
    latency_avg: LatencyBreakdown = field(default_factory=LatencyBreakdown)
    latency_p50: LatencyBreakdown = field(default_factory=LatencyBreakdown)
    latency_p90: LatencyBreakdown = field(default_factory=LatencyBreakdown)
    latency_p95: LatencyBreakdown = field(default_factory=LatencyBreakdown)
    latency_p99: LatencyBreakdown = field(default_factory=LatencyBreakdown)
    provider_mode: str = ""
    stt_provider: str = ""
    tts_provider: str = ""
    llm_provider: str = ""
    telephony_provider: str = ""
    stt_model: str = ""
    tts_model: str = ""
    llm_model: str = ""
    error_code: str | None = None
    preemptive_hits: int = 0
    preemptive_misses: int = 0
    context_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "turns":
                out[name] = [turn.to_dict() for turn in value]
            elif isinstance(value, LatencyBreakdown | CostBreakdown):
                out[name] = value.to_dict()
            else:
                out[name] = value
        return out


__all__ = [
    "INTERRUPTED_TEXT",
    "OPTIONAL_LATENCY_FIELDS",
    "REQUIRED_LATENCY_FIELDS",
    "CallMetrics",
    "CostBreakdown",
    "LatencyBreakdown",
    "TurnMetrics",
]
