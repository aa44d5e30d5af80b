"""OpenTelemetry spans per call and per stage (API.md A.1 #55, A.13). Extra ``tracing``; off by default.

Spans carry sizes, ids and timings — never transcript text or phone numbers. They are built by a bus
observer from the events the call emits (the stage spans from each turn's timing marks), so tracing adds
nothing to the audio path. ``init_tracing`` does nothing unless ``PATTER_OTEL_ENABLED`` is 1/true/yes;
spans go over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces``).
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import CallEnded, CallStarted, Interrupted, ToolCalled, ToolResult, TurnCompleted

log = logging.getLogger("getpatter.tracing")

SPAN_CALL = "getpatter.call"
SPAN_STT = "getpatter.stt"
SPAN_ENDPOINT = "getpatter.endpoint"
SPAN_LLM = "getpatter.llm"
SPAN_TTS = "getpatter.tts"
SPAN_BARGEIN = "getpatter.bargein"
SPAN_TOOL = "getpatter.tool"

_state: dict[str, Any] = {"provider": None, "tracer": None}


def _enabled_by_env() -> bool:
    return os.environ.get("PATTER_OTEL_ENABLED", "").strip().lower() in ("1", "true", "yes")


def init_tracing(
    service_name: str = "patter",
    otlp_endpoint: str | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    *,
    exporter: Any = None,
) -> bool:
    """Start exporting spans; returns whether tracing is on. ``exporter`` (any SpanExporter) is for tests."""
    if not _enabled_by_env():
        return False
    try:
        sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
        export = importlib.import_module("opentelemetry.sdk.trace.export")
        resources = importlib.import_module("opentelemetry.sdk.resources")
    except ImportError as exc:
        raise ImportError("tracing needs the extra: pip install 'getpatter[tracing]'") from exc
    resource = resources.Resource.create({"service.name": service_name, **dict(resource_attributes or {})})
    provider = sdk_trace.TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    else:
        otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        base = (otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")).rstrip("/")
        if not base:
            log.warning("PATTER_OTEL_ENABLED is set but no OTLP endpoint: set OTEL_EXPORTER_OTLP_ENDPOINT")
            return False
        provider.add_span_processor(
            export.BatchSpanProcessor(otlp.OTLPSpanExporter(endpoint=f"{base}/v1/traces"))
        )
    _state["provider"] = provider  # our own provider: the application's global one is left alone
    _state["tracer"] = provider.get_tracer("getpatter")
    return True


def is_tracing_enabled() -> bool:
    return _state["tracer"] is not None


def shutdown_tracing() -> None:
    provider = _state["provider"]
    _state["provider"] = _state["tracer"] = None
    if provider is not None:
        provider.shutdown()


def start_span(
    name: str, attributes: Mapping[str, Any] | None = None, *, start_time: int | None = None
) -> Any:
    """A span on getpatter's tracer, or ``None`` when tracing is off."""
    tracer = _state["tracer"]
    if tracer is None:
        return None
    return tracer.start_span(name, attributes=dict(attributes or {}), start_time=start_time)


def _ns(monotonic_s: float | None) -> int | None:
    """Monotonic seconds (the call's timing marks) -> epoch nanoseconds (OpenTelemetry)."""
    if monotonic_s is None:
        return None
    return time.time_ns() - time.monotonic_ns() + int(monotonic_s * 1e9)


def tracing_observer(bus: EventBus, ctx: CallContext) -> None:
    """Attach span-building to one call (a no-op when tracing is off)."""
    if not is_tracing_enabled():
        return
    opened: dict[str, Any] = {}
    trace = importlib.import_module("opentelemetry.trace")

    def child(name: str, attrs: dict[str, Any], start: float | None, end: float | None) -> None:
        if start is None or end is None or end < start:
            return
        parent = trace.set_span_in_context(opened["call"]) if "call" in opened else None
        span = _state["tracer"].start_span(name, context=parent, attributes=attrs, start_time=_ns(start))
        span.end(end_time=_ns(end))

    def on_start(ev: CallStarted) -> None:
        opened["call"] = start_span(
            SPAN_CALL,
            {
                "getpatter.call.id": ev.call_id,
                "getpatter.call.direction": ev.direction,
                "getpatter.call.provider_mode": ev.provider_mode,
            },
        )

    def on_turn(ev: TurnCompleted) -> None:
        t = ev.timings
        spoken_end = t.speech_ended or t.speech_started
        child(SPAN_STT, {"getpatter.stt.text_len": len(ev.user_text)}, spoken_end, t.transcript_final)
        if t.speech_ended is not None and t.llm_dispatched is not None:
            silence = (t.llm_dispatched - t.speech_ended) * 1000.0
            child(SPAN_ENDPOINT, {"getpatter.endpoint.silence_ms": silence}, t.speech_ended, t.llm_dispatched)
        ttft = (
            (t.llm_first_token - t.llm_dispatched) * 1000.0 if t.llm_first_token and t.llm_dispatched else 0.0
        )
        child(
            SPAN_LLM,
            {"getpatter.llm.iteration": ev.turn_index, "getpatter.llm.ttft_ms": ttft},
            t.llm_dispatched,
            t.llm_done,
        )
        child(SPAN_TTS, {"getpatter.tts.text_len": len(ev.agent_text)}, t.first_sentence, t.last_audio_sent)

    def on_interrupted(ev: Interrupted) -> None:
        end = time.monotonic()
        child(
            SPAN_BARGEIN,
            {"getpatter.bargein.cancelled_text_len": len(ev.heard_text)},
            end - ev.bargein_ms / 1000,
            end,
        )

    def on_tool(ev: ToolCalled | ToolResult) -> None:
        if isinstance(ev, ToolCalled):
            opened[f"tool:{ev.name}"] = time.monotonic()
            return
        started = opened.pop(f"tool:{ev.name}", None)
        child(
            SPAN_TOOL,
            {"getpatter.tool.name": ev.name, "getpatter.tool.is_error": ev.is_error},
            started,
            time.monotonic(),
        )

    def on_end(ev: CallEnded) -> None:
        span = opened.pop("call", None)
        if span is not None:
            span.set_attribute("getpatter.call.duration_s", ev.duration_seconds)
            span.end()

    bus.on(CallStarted, on_start)
    bus.on(TurnCompleted, on_turn)
    bus.on(Interrupted, on_interrupted)
    bus.on(ToolCalled, on_tool)
    bus.on(ToolResult, on_tool)
    bus.on(CallEnded, on_end)


__all__ = [
    "SPAN_BARGEIN",
    "SPAN_CALL",
    "SPAN_ENDPOINT",
    "SPAN_LLM",
    "SPAN_STT",
    "SPAN_TOOL",
    "SPAN_TTS",
    "init_tracing",
    "is_tracing_enabled",
    "shutdown_tracing",
    "start_span",
    "tracing_observer",
]
