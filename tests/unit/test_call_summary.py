"""``phone.call(wait=True)`` gets the call's metrics from the one ``CallSummary`` event, whatever the
order the observers were attached in (the registry used to read ``ctx.metrics``, which was only set if
the metrics collector's handler happened to run first)."""

from __future__ import annotations

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import CallEnded, CallStarted
from getpatter.metrics.collector import MetricsCollector
from getpatter.metrics.model import CallMetrics
from getpatter.metrics.pricing import merge_pricing
from getpatter.server.calls import OutboundRegistry


async def test_wait_result_carries_the_summary_metrics_when_the_registry_listens_first() -> None:
    registry = OutboundRegistry(EventBus())
    record = registry.register(
        "CA1",
        "twilio",
        to="+15550001111",
        from_="+15550002222",
        agent=None,
        first_message="",
        voicemail_message="",
        machine_detection=False,
        on_machine_detection=None,
    )
    bus = EventBus()
    ctx = CallContext(
        call_id="CA1", caller="+15550002222", callee="+15550001111", direction="outbound", carrier="twilio"
    )
    registry.observe(bus, ctx)  # before the collector
    MetricsCollector(merge_pricing()).observer(bus, ctx)
    bus.emit(
        CallStarted(
            call_id="CA1",
            caller=ctx.caller,
            callee=ctx.callee,
            direction="outbound",
            carrier="twilio",
            provider_mode="pipeline",
        )
    )
    registry.status("CA1", "twilio", "in-progress")
    # The carrier's terminal status first, then the media session ends: the result resolves right away.
    registry.status("CA1", "twilio", "completed", duration_seconds=61.0)
    bus.emit(
        CallEnded(
            call_id="CA1",
            reason="stopped",
            duration_seconds=61.0,
            transcript=({"role": "user", "text": "hi"},),
        )
    )
    result = record.result.result()
    assert isinstance(result.metrics, CallMetrics) and result.metrics is ctx.metrics
    assert result.cost == result.metrics.cost and result.cost.telephony == 0.017  # two started minutes
    assert result.transcript == ({"role": "user", "text": "hi"},) and result.outcome == "answered"
