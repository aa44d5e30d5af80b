"""The metrics observer on a real EventBus: usage -> cost, turns -> CallMetrics, on_metrics per turn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import (
    CallEnded,
    CallStarted,
    CallSummary,
    TurnCompleted,
    TurnTimings,
    UsageRecorded,
)
from getpatter.metrics.collector import MetricsCollector
from getpatter.metrics.model import CallMetrics
from getpatter.metrics.pricing import merge_pricing

TIMINGS = TurnTimings(
    speech_ended=1.0,
    transcript_final=1.2,
    llm_dispatched=1.25,
    llm_first_token=1.5,
    first_sentence=1.6,
    tts_first_byte=1.7,
    first_audio_sent=1.8,
)


def _call(
    collector: MetricsCollector, carrier: str = "twilio", mode: str = "pipeline"
) -> tuple[EventBus, CallContext]:
    bus = EventBus()
    ctx = CallContext(
        call_id="CA1",
        caller="+15550001111",
        callee="+15550002222",
        direction="inbound",
        carrier=carrier,
        started_at=1000.0,
    )
    collector.observer(bus, ctx)
    bus.emit(
        CallStarted(
            call_id="CA1",
            caller=ctx.caller,
            callee=ctx.callee,
            direction="inbound",
            carrier=carrier,
            provider_mode=mode,
            at=1000.0,
        )
    )
    return bus, ctx


def _turn(bus: EventBus, index: int, agent: str, timings: TurnTimings = TIMINGS, at: float = 1010.0) -> None:
    bus.emit(
        TurnCompleted(
            call_id="CA1",
            turn_index=index,
            user_text="hi",
            agent_text=agent,
            interrupted=agent == "[interrupted]",
            timings=timings,
            at=at,
        )
    )


def test_pipeline_cost_uses_every_priced_unit_and_sets_ctx_metrics() -> None:
    collector = MetricsCollector(merge_pricing())
    bus, ctx = _call(collector)
    _turn(bus, 0, "Hello there.")
    _turn(bus, 1, "[interrupted]")
    bus.emit(UsageRecorded(call_id="CA1", kind="stt", provider="deepgram", model="nova-3", audio_seconds=90))
    bus.emit(UsageRecorded(call_id="CA1", kind="tts", provider="elevenlabs", characters=2000))
    bus.emit(
        UsageRecorded(
            call_id="CA1",
            kind="llm",
            provider="openai",
            model="gpt-4o-mini",
            input_tokens=1000,
            output_tokens=200,
            cache_read_tokens=4000,
        )
    )
    bus.emit(CallEnded(call_id="CA1", reason="stopped", duration_seconds=61.234))

    m = ctx.metrics
    assert isinstance(m, CallMetrics)
    assert m.duration_seconds == 61.23
    assert m.cost.stt == round(1.5 * 0.0077, 6)
    assert m.cost.tts == round(2 * 0.06, 6)
    # input_tokens exclude the cached ones, which are billed at the cache-read rate.
    assert m.cost.llm == round((1000 * 0.15 + 200 * 0.60 + 4000 * 0.075) / 1e6, 6)
    assert m.cost.llm_cached_savings == round(4000 * (0.15 - 0.075) / 1e6, 6)
    assert m.cost.telephony == 2 * 0.0085  # 61 s = two started Twilio minutes
    assert m.cost.total == round(m.cost.stt + m.cost.tts + m.cost.llm + m.cost.telephony, 6)
    assert (m.stt_provider, m.stt_model, m.tts_provider, m.llm_provider, m.llm_model) == (
        "deepgram",
        "nova-3",
        "elevenlabs",
        "openai",
        "gpt-4o-mini",
    )
    assert m.provider_mode == "pipeline" and m.telephony_provider == "twilio" and m.context_tokens == 5000
    assert [t.tts_characters for t in m.turns] == [12, 0]
    assert m.latency_avg.total_ms == 800.0  # the interrupted turn is not counted
    assert m.latency_p99.total_ms == 800.0


def test_realtime_usage_is_priced_from_the_vendor_usage_object() -> None:
    collector = MetricsCollector(merge_pricing(), provider_mode="openai_realtime")
    bus, ctx = _call(collector, carrier="telnyx", mode="openai_realtime")
    usage = {
        "input_token_details": {
            "audio_tokens": 1000,
            "text_tokens": 200,
            "cached_tokens_details": {"audio_tokens": 100, "text_tokens": 50},
        },
        "output_token_details": {"audio_tokens": 500, "text_tokens": 40},
    }
    for _ in range(2):
        bus.emit(
            UsageRecorded(
                call_id="CA1",
                kind="realtime",
                provider="openai_realtime",
                model="gpt-4o-mini-realtime-preview",
                details=usage,
            )
        )
    bus.emit(CallEnded(call_id="CA1", reason="stopped", duration_seconds=30))
    one = (900 * 10 + 100 * 0.30 + 150 * 0.60 + 50 * 0.06 + 500 * 20 + 40 * 2.40) / 1e6
    savings = (100 * (10 - 0.30) + 50 * (0.60 - 0.06)) / 1e6
    m = ctx.metrics
    assert m.cost.llm == pytest.approx(2 * one, abs=2e-6)
    assert m.cost.llm_cached_savings == pytest.approx(2 * savings, abs=2e-6)
    assert m.cost.stt == 0 and m.cost.tts == 0
    assert m.cost.telephony == round(0.5 * 0.007, 6)  # Telnyx bills per second
    assert m.llm_provider == "openai_realtime" and m.telephony_provider == "telnyx"


def test_unknown_providers_cost_nothing_and_events_after_end_are_ignored() -> None:
    collector = MetricsCollector()
    bus, ctx = _call(collector, carrier="nowhere")
    bus.emit(UsageRecorded(call_id="CA1", kind="llm", provider="acme", model="x", input_tokens=10**6))
    bus.emit(CallEnded(call_id="CA1", reason="stopped", duration_seconds=10))
    first = ctx.metrics
    assert first.cost.total == 0.0 and first.turns == ()
    _turn(bus, 0, "late")
    bus.emit(CallEnded(call_id="CA1", reason="again", duration_seconds=99))
    assert ctx.metrics is first


async def test_on_metrics_fires_per_turn_sync_or_async_and_errors_are_contained() -> None:
    seen: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def on_metrics(data: dict[str, Any]) -> None:
        seen.append(data)
        if len(seen) == 2:
            done.set()
            raise RuntimeError("user bug")

    bus, _ = _call(MetricsCollector(on_metrics=on_metrics))
    bus.emit(
        UsageRecorded(call_id="CA1", kind="llm", provider="openai", model="gpt-4o-mini", output_tokens=1000)
    )
    _turn(bus, 0, "One.", at=1030.0)
    _turn(bus, 1, "Two.", at=1070.0)
    await asyncio.wait_for(done.wait(), 2)
    assert [d["turn"].turn_index for d in seen] == [0, 1]
    assert seen[0]["call_id"] == "CA1" and seen[0]["llm_ttft_ms"] == 300.0
    assert seen[0]["cost_so_far"].telephony == 0.0085 and seen[1]["cost_so_far"].telephony == 0.017
    assert seen[0]["cost_so_far"].llm == round(1000 * 0.60 / 1e6, 6)

    def broken(data: dict[str, Any]) -> None:
        raise ValueError("sync user bug")

    bus2, ctx2 = _call(MetricsCollector(on_metrics=broken))
    _turn(bus2, 0, "fine")  # logged, not raised
    bus2.emit(CallEnded(call_id="CA1", reason="stopped", duration_seconds=5))
    assert len(ctx2.metrics.turns) == 1


def test_the_finished_call_is_published_once_as_a_call_summary() -> None:
    """One ``CallSummary`` per call, on the call's bus, carrying the same ``CallMetrics`` as
    ``ctx.metrics`` and the ``CallEnded`` it summarises; a second ``CallEnded`` publishes nothing."""
    summaries: list[CallSummary] = []
    bus = EventBus()
    bus.on(CallSummary, summaries.append)  # subscribed before the collector: order must not matter
    collector = MetricsCollector(merge_pricing())
    ctx = CallContext(
        call_id="CA1", caller="+1", callee="+2", direction="inbound", carrier="twilio", started_at=1000.0
    )
    collector.observer(bus, ctx)
    _turn(bus, 0, "Hello.")
    end = CallEnded(call_id="CA1", reason="stopped", duration_seconds=42.0)
    bus.emit(end)
    bus.emit(CallEnded(call_id="CA1", reason="stopped", duration_seconds=50.0))
    assert len(summaries) == 1
    (summary,) = summaries
    assert summary.type == "call_summary" and summary.call_id == "CA1" and summary.ended is end
    assert summary.metrics is ctx.metrics and summary.metrics.duration_seconds == 42.0
    assert [t.agent_text for t in summary.metrics.turns] == ["Hello."]
