"""The arithmetic of API.md D.1: turn timings -> ``LatencyBreakdown``, turns -> averages and percentiles.

Pure functions (plus one tiny per-call helper, ``TurnMeasurer``) so the collector, the dashboard store and
the call-log writer all derive identical numbers from the same ``TurnCompleted`` events.

Per-turn stages (all from the turn's monotonic marks; a stage whose marks are missing is not measured):

* ``stt_ms``: end of speech (VAD stop; fallback: speech start) -> final transcript
* ``endpoint_ms``: end of speech -> LLM dispatch
* ``llm_ttft_ms``: final transcript -> first LLM token; ``llm_ms`` = TTFT, else the full generation time
* ``llm_total_ms``: final transcript -> LLM done
* ``tts_ms``: first sentence (fallback: LLM done) -> first TTS byte
* ``tts_total_ms``: first LLM token (fallback: first sentence) -> last audio byte sent
* ``total_ms`` (issue 8): the caller stopped speaking (end of speech, else final transcript) -> first agent
  audio sent. A greeting has no caller speech, so it is measured from its dispatch (D.1: the first-message
  turn is measured too).
* ``bargein_ms``: barge-in detected -> playback stopped
* ``user_speech_duration_ms``: speech start -> end of speech
* ``agent_response_ms``: ``endpoint_ms + llm_ttft_ms + tts_ms`` when all three were measured
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

from getpatter.call.events import TurnCompleted, TurnTimings
from getpatter.metrics.model import (
    INTERRUPTED_TEXT,
    OPTIONAL_LATENCY_FIELDS,
    REQUIRED_LATENCY_FIELDS,
    LatencyBreakdown,
    TurnMetrics,
)

#: A turn whose caller speech starts this close to (or before) the previous turn's barge-in has
#: unreliable speech anchors, so its ``stt_ms``/``endpoint_ms`` are dropped (D.1).
BARGE_IN_ANCHOR_S = 0.1

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between order statistics.

    Same definition as numpy's default (``method="linear"``, Hyndman & Fan type 7). Raises ``ValueError``
    on an empty sequence or ``q`` outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be within [0, 100], got {q}")
    ordered = sorted(values)
    h = (len(ordered) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


def _ms(start: float | None, end: float | None) -> float | None:
    """``end - start`` in ms (clamped at 0: marks from different clocks may cross), or None."""
    if start is None or end is None:
        return None
    return round(max(end - start, 0.0) * 1000.0, 1)


def _first(*marks: float | None) -> float | None:
    return next((m for m in marks if m is not None), None)


def latency_from_timings(t: TurnTimings, *, drop_speech_anchors: bool = False) -> LatencyBreakdown:
    """The ``LatencyBreakdown`` of one turn from its monotonic marks (see the module docstring)."""
    speech_end = None if drop_speech_anchors else t.speech_ended
    stt_anchor = None if drop_speech_anchors else _first(t.speech_ended, t.speech_started)
    stt = _ms(stt_anchor, t.transcript_final)
    endpoint = _ms(speech_end, t.llm_dispatched)
    ttft = _ms(t.transcript_final, t.llm_first_token)
    llm_total = _ms(t.transcript_final, t.llm_done)
    tts = _ms(_first(t.first_sentence, t.llm_done), t.tts_first_byte)
    tts_total = _ms(_first(t.llm_first_token, t.first_sentence), t.last_audio_sent)
    total = _ms(_first(t.speech_ended, t.transcript_final, t.llm_dispatched), t.first_audio_sent)
    agent_response = (
        round(endpoint + ttft + tts, 1)
        if endpoint is not None and ttft is not None and tts is not None
        else None
    )
    llm = ttft if ttft is not None else llm_total
    return LatencyBreakdown(
        stt_ms=stt or 0.0,
        llm_ms=llm or 0.0,
        tts_ms=tts or 0.0,
        total_ms=total or 0.0,
        endpoint_ms=endpoint,
        llm_ttft_ms=ttft,
        llm_total_ms=llm_total,
        tts_total_ms=tts_total,
        bargein_ms=_ms(t.barge_in_detected, t.playback_stopped),
        user_speech_duration_ms=_ms(t.speech_started, t.speech_ended),
        agent_response_ms=agent_response,
    )


class TurnMeasurer:
    """Turns ``TurnCompleted`` events of one call into ``TurnMetrics``.

    Stateful only for the barge-in rule: it remembers when the previous turn was barged in. Use one per
    call and feed it every turn in order.
    """

    def __init__(self) -> None:
        self._last_barge_in: float | None = None

    def measure(self, ev: TurnCompleted) -> TurnMetrics:
        t = ev.timings
        start = _first(t.speech_started, t.speech_ended)
        drop = (
            self._last_barge_in is not None
            and start is not None
            and start - self._last_barge_in < BARGE_IN_ANCHOR_S
        )
        self._last_barge_in = t.barge_in_detected
        latency = latency_from_timings(t, drop_speech_anchors=drop)
        interrupted_blank = ev.agent_text == INTERRUPTED_TEXT
        return TurnMetrics(
            turn_index=ev.turn_index,
            user_text=ev.user_text,
            agent_text=ev.agent_text,
            latency=latency,
            stt_audio_seconds=round(ev.stt_audio_seconds, 3),
            tts_characters=0 if interrupted_blank else len(ev.agent_text),
            timestamp=ev.at,
        )


def counted_turns(turns: Iterable[TurnMetrics]) -> list[TurnMetrics]:
    """The turns that enter averages and percentiles: answered (not ``[interrupted]``) and measured."""
    return [t for t in turns if t.agent_text != INTERRUPTED_TEXT and t.latency.total_ms > 0]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _summarise(
    turns: Sequence[TurnMetrics],
    required: Callable[[list[float]], float],
    optional: Callable[[list[float]], float],
    *,
    required_skips_zero: bool,
) -> LatencyBreakdown:
    """Apply one statistic per field. Optional fields only use positive values (None when there are none).

    ``required_skips_zero`` makes the component fields (stt/llm/tts) ignore zeros as well; ``total_ms``
    always uses every counted turn.
    """
    if not turns:
        return LatencyBreakdown()
    values: dict[str, float | None] = {}
    for name in REQUIRED_LATENCY_FIELDS:
        column = [float(getattr(t.latency, name)) for t in turns]
        if required_skips_zero and name != "total_ms":
            column = [v for v in column if v > 0]
        values[name] = round(required(column), 2) if column else 0.0
    for name in OPTIONAL_LATENCY_FIELDS:
        positives = [v for t in turns if (v := getattr(t.latency, name)) is not None and v > 0]
        values[name] = round(optional(positives), 2) if positives else None
    return LatencyBreakdown(**cast(dict[str, Any], values))


def average_latency(turns: Iterable[TurnMetrics]) -> LatencyBreakdown:
    """D.1 average: stt/llm/tts/total = plain mean over counted turns; optional fields = mean of
    positive values, else None."""
    return _summarise(counted_turns(turns), _mean, _mean, required_skips_zero=False)


def percentile_latency(turns: Iterable[TurnMetrics], q: float) -> LatencyBreakdown:
    """D.1 percentile ``q`` per field over counted turns; component fields ignore zeros, ``total_ms``
    uses all values; optional fields use positive values, else None."""

    def stat(column: list[float]) -> float:
        return percentile(column, q)

    return _summarise(counted_turns(turns), stat, stat, required_skips_zero=True)


__all__ = [
    "BARGE_IN_ANCHOR_S",
    "PERCENTILES",
    "TurnMeasurer",
    "average_latency",
    "counted_turns",
    "latency_from_timings",
    "percentile",
    "percentile_latency",
]
