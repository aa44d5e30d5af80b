"""OpenTelemetry spans for a whole call: one per call and per stage, with sizes and ids, never text."""

from __future__ import annotations

import pytest

from tests.integration.harness import call_harness

pytest.importorskip("opentelemetry.sdk", reason="needs the 'tracing' extra")


async def test_a_call_produces_stage_spans_without_transcript_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from getpatter import tracing

    assert tracing.init_tracing() is False  # off unless asked for
    monkeypatch.setenv("PATTER_OTEL_ENABLED", "1")
    exporter = InMemorySpanExporter()
    assert tracing.init_tracing(exporter=exporter) is True
    try:
        async with call_harness(utterances=["My secret plan"], replies=["Your secret is safe."]) as h:
            call = await h.dial()
            await call.wait_for_agent_audio(timeout=5)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await call.say_tone(500)
            await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await call.hangup()
            await h.wait_ended()
    finally:
        tracing.shutdown_tracing()

    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count(tracing.SPAN_CALL) == 1
    for stage in (tracing.SPAN_STT, tracing.SPAN_LLM, tracing.SPAN_TTS):
        assert stage in names, names
    root = next(s for s in spans if s.name == tracing.SPAN_CALL)
    assert root.attributes["getpatter.call.id"] == call.sid
    assert root.attributes["getpatter.call.provider_mode"] == "pipeline"
    children = [s for s in spans if s.name != tracing.SPAN_CALL]
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in children)
    llm = [s for s in spans if s.name == tracing.SPAN_LLM][-1]
    assert llm.attributes["getpatter.llm.ttft_ms"] >= 0 and llm.end_time >= llm.start_time
    for span in spans:  # sizes and ids only
        for value in span.attributes.values():
            assert "secret" not in str(value).lower() and "+1555" not in str(value)
