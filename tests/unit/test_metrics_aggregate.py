"""D.1 arithmetic: per-turn stages from monotonic marks, averages and percentiles over turns."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from getpatter.call.events import TurnCompleted, TurnTimings
from getpatter.metrics.aggregate import (
    TurnMeasurer,
    average_latency,
    latency_from_timings,
    percentile,
    percentile_latency,
)
from getpatter.metrics.model import LatencyBreakdown, TurnMetrics

FULL = TurnTimings(
    speech_started=10.0,
    speech_ended=11.0,
    transcript_final=11.2,
    llm_dispatched=11.25,
    llm_first_token=11.6,
    llm_done=12.0,
    first_sentence=11.7,
    tts_first_byte=11.85,
    first_audio_sent=11.9,
    last_audio_sent=14.0,
)


def test_every_stage_of_a_full_turn() -> None:
    lat = latency_from_timings(FULL)
    assert lat.stt_ms == 200.0  # speech_ended -> transcript_final
    assert lat.endpoint_ms == 250.0  # speech_ended -> llm_dispatched
    assert lat.llm_ttft_ms == 400.0 and lat.llm_ms == 400.0
    assert lat.llm_total_ms == 800.0
    assert lat.tts_ms == 150.0  # first_sentence -> tts_first_byte
    assert lat.tts_total_ms == 2400.0  # llm_first_token -> last_audio_sent
    assert lat.total_ms == 900.0  # caller stopped speaking -> first audio sent
    assert lat.user_speech_duration_ms == 1000.0
    assert lat.agent_response_ms == 800.0  # 250 + 400 + 150
    assert lat.bargein_ms is None


def test_missing_marks_are_not_measured_and_fallbacks_apply() -> None:
    no_vad = TurnTimings(transcript_final=5.0, llm_done=5.5, tts_first_byte=5.7, first_audio_sent=5.8)
    lat = latency_from_timings(no_vad)
    assert lat.stt_ms == 0.0 and lat.endpoint_ms is None and lat.llm_ttft_ms is None
    assert lat.llm_ms == 500.0  # falls back to the full generation time
    assert lat.tts_ms == 200.0  # from LLM done when there is no sentence mark
    assert lat.total_ms == 800.0  # anchored on the final transcript
    assert lat.agent_response_ms is None
    greeting = TurnTimings(llm_dispatched=1.0, first_sentence=1.0, tts_first_byte=1.3, first_audio_sent=1.35)
    assert latency_from_timings(greeting).total_ms == 350.0
    assert latency_from_timings(TurnTimings()) == LatencyBreakdown()


def test_crossed_marks_clamp_to_zero_and_barge_in_is_measured() -> None:
    lat = latency_from_timings(
        TurnTimings(speech_ended=2.0, transcript_final=1.9, barge_in_detected=3.0, playback_stopped=3.04)
    )
    assert lat.stt_ms == 0.0
    assert lat.bargein_ms == 40.0


def _turn(index: int, timings: TurnTimings, agent: str = "ok", at: float = 100.0) -> TurnCompleted:
    return TurnCompleted(
        call_id="c",
        turn_index=index,
        user_text="u",
        agent_text=agent,
        interrupted=False,
        timings=timings,
        at=at,
    )


def test_measurer_drops_speech_anchors_right_after_a_barge_in() -> None:
    m = TurnMeasurer()
    cut = m.measure(_turn(0, TurnTimings(barge_in_detected=20.0, playback_stopped=20.05), "[interrupted]"))
    assert cut.tts_characters == 0 and cut.interrupted and cut.latency.bargein_ms == 50.0
    after = m.measure(_turn(1, replace(FULL, speech_started=19.95)))
    assert after.latency.stt_ms == 0.0 and after.latency.endpoint_ms is None
    assert after.latency.agent_response_ms is None and after.latency.total_ms == 900.0
    normal = m.measure(_turn(2, FULL, "Sure thing.", at=123.0))
    assert normal.latency.stt_ms == 200.0 and normal.tts_characters == 11 and normal.timestamp == 123.0


@given(
    st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_matches_numpy_linear(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


def test_percentile_rejects_empty_and_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def _tm(total: float, stt: float = 0.0, agent: str = "ok", endpoint: float | None = None) -> TurnMetrics:
    lat = LatencyBreakdown(stt_ms=stt, total_ms=total, endpoint_ms=endpoint)
    return TurnMetrics(turn_index=0, user_text="", agent_text=agent, latency=lat)


def test_average_ignores_interrupted_and_unmeasured_turns() -> None:
    turns = [
        _tm(100, stt=0, endpoint=None),
        _tm(300, stt=60, endpoint=50),
        _tm(900, stt=500, agent="[interrupted]", endpoint=1),
        _tm(0, stt=400, endpoint=7),  # total 0: not measured
    ]
    avg = average_latency(turns)
    assert avg.total_ms == 200.0
    assert avg.stt_ms == 30.0  # plain mean over the counted turns, zeros included
    assert avg.endpoint_ms == 50.0  # optional: mean of positive values only
    assert avg.llm_ttft_ms is None
    assert average_latency([]) == LatencyBreakdown()


def test_percentiles_component_fields_skip_zeros_total_uses_all() -> None:
    totals = [120.0, 340.0, 90.0, 800.0, 410.0]
    stts = [0.0, 50.0, 0.0, 70.0, 90.0]
    turns = [_tm(t, stt=s) for t, s in zip(totals, stts, strict=True)]
    for q in (50, 90, 95, 99):
        p = percentile_latency(turns, q)
        assert p.total_ms == pytest.approx(float(np.percentile(totals, q)), abs=0.01)
        assert p.stt_ms == pytest.approx(float(np.percentile([50.0, 70.0, 90.0], q)), abs=0.01)
        assert p.tts_ms == 0.0 and p.endpoint_ms is None
