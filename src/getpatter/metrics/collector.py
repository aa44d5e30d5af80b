"""The metrics observer: listens to one call's events and produces its ``CallMetrics``.

When the call ends, the ``CallEnded`` handler here builds the call's ``CallMetrics`` and publishes it on
the call's bus as one ``CallSummary`` event; the dashboard store, the call log, the standalone-dashboard
notifier and ``phone.call(wait=True)`` subscribe to that event, so subscription order never matters and
nobody reads the metrics "one loop iteration later". It also sets ``ctx.metrics``, which the session
hands to ``on_call_end`` after ``bus.drain()``. No handler here is async: an async ``CallEnded`` handler
would make the session's end wait in ``bus.drain()``.

Costs come from billable usage (``UsageRecorded``) priced with ``metrics/pricing.py``; telephony from the
call's duration. Providers report usage in their billing unit, so nothing here is guessed.
"""

from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from getpatter._tasks import BackgroundTasks
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import CallEnded, CallStarted, CallSummary, TurnCompleted, UsageRecorded
from getpatter.metrics.aggregate import TurnMeasurer, average_latency, percentile_latency
from getpatter.metrics.model import CallMetrics, CostBreakdown, TurnMetrics
from getpatter.metrics.pricing import (
    DEFAULT_PRICING,
    ProviderPricing,
    calculate_llm_cost,
    calculate_realtime_cost,
    calculate_stt_cost,
    calculate_telephony_cost,
    calculate_tts_cost,
    has_calibrated_price,
    resolve_model_pricing,
)

log = logging.getLogger("getpatter.metrics")

#: ``on_metrics(payload)``; may return an awaitable.
MetricsCallback = Callable[[dict[str, Any]], Any]
_Key = tuple[str, str]  # (provider id, model)


@dataclass(slots=True)
class _Tokens:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0


class _CallMeter:
    """The running totals of one call. Lives as long as the call's bus subscriptions."""

    def __init__(self, owner: MetricsCollector, ctx: CallContext, bus: EventBus) -> None:
        self._owner = owner
        self._ctx = ctx
        self._bus = bus
        self._measurer = TurnMeasurer()
        self.turns: list[TurnMetrics] = []
        self.started_at = ctx.started_at
        self.provider_mode = owner.provider_mode
        self.telephony = owner.telephony_provider or ctx.carrier
        self.stt_seconds: dict[_Key, float] = defaultdict(float)
        self.tts_chars: dict[_Key, int] = defaultdict(int)
        self.llm_tokens: dict[_Key, _Tokens] = defaultdict(_Tokens)
        self.realtime_cost = 0.0
        self.realtime_savings = 0.0
        self.context_tokens = 0
        self.providers: dict[str, _Key] = {}
        self.ended = False

    # -- events --------------------------------------------------------------------------------------
    def on_started(self, ev: CallStarted) -> None:
        self.started_at = ev.at
        self.provider_mode = ev.provider_mode or self.provider_mode
        self.telephony = ev.carrier or self.telephony

    def on_usage(self, ev: UsageRecorded) -> None:
        if self.ended:
            return
        key = (ev.provider, ev.model)
        kind = "llm" if ev.kind == "realtime" else ev.kind
        self.providers.setdefault(kind, key)
        if ev.kind == "stt":
            self.stt_seconds[key] += max(ev.audio_seconds, 0.0)
        elif ev.kind == "tts":
            self.tts_chars[key] += max(ev.characters, 0)
        elif ev.kind == "llm":
            tokens = self.llm_tokens[key]
            tokens.input += ev.input_tokens
            tokens.output += ev.output_tokens
            tokens.cache_read += ev.cache_read_tokens
            tokens.cache_write += ev.cache_write_tokens
            self.context_tokens = max(self.context_tokens, ev.input_tokens + ev.cache_read_tokens)
        elif ev.kind == "realtime" and ev.provider == "openai_realtime":
            self._owner.warn_if_uncalibrated(ev.provider, ev.model)  # e.g. a per-call model override
            cost, savings = calculate_realtime_cost(self._owner.pricing, ev.model, ev.details)
            self.realtime_cost += cost
            self.realtime_savings += savings

    def on_turn(self, ev: TurnCompleted) -> None:
        if self.ended:
            return
        turn = self._measurer.measure(ev)
        self.turns.append(turn)
        callback = self._owner.on_metrics
        if callback is None:
            return
        payload = {
            "call_id": self._ctx.call_id,
            "turn": turn,
            "cost_so_far": self.cost(max(ev.at - self.started_at, 0.0)),
            "llm_ttft_ms": turn.latency.llm_ttft_ms,
        }
        try:
            result = callback(payload)
        except Exception:
            log.exception("on_metrics callback failed for call %s", self._ctx.call_id)
            return
        if inspect.isawaitable(result):
            # Our own task, not the bus's: a slow on_metrics must not hold up the call's end.
            self._owner._tasks.spawn(_guarded(result, self._ctx.call_id), "on_metrics")

    def on_ended(self, ev: CallEnded) -> None:
        if self.ended:
            return
        self.ended = True
        duration = ev.duration_seconds if ev.duration_seconds > 0 else max(ev.at - self.started_at, 0.0)
        metrics = self.call_metrics(duration, ev.error_code)
        self._ctx.metrics = metrics
        self._bus.emit(CallSummary(call_id=ev.call_id, at=ev.at, ended=ev, metrics=metrics))

    # -- results -------------------------------------------------------------------------------------
    def cost(self, duration_seconds: float) -> CostBreakdown:
        """Cost of the usage reported so far plus telephony for ``duration_seconds`` (D.2)."""
        table = self._owner.pricing
        stt = sum(calculate_stt_cost(table, p, s, m) for (p, m), s in self.stt_seconds.items())
        tts = sum(calculate_tts_cost(table, p, c, m) for (p, m), c in self.tts_chars.items())
        llm, savings = self.realtime_cost, self.realtime_savings
        for (provider, model), tok in self.llm_tokens.items():
            llm += calculate_llm_cost(
                table, provider, model, tok.input, tok.output, tok.cache_read, tok.cache_write
            )
            savings += _cache_savings(resolve_model_pricing(table, provider, model), tok.cache_read)
        telephony = calculate_telephony_cost(table, self.telephony, duration_seconds)
        return CostBreakdown.of(stt=stt, tts=tts, llm=llm, telephony=telephony, savings=savings)

    def call_metrics(self, duration_seconds: float, error_code: str | None) -> CallMetrics:
        turns = tuple(self.turns)
        stt = self.providers.get("stt", ("", ""))
        tts = self.providers.get("tts", ("", ""))
        llm = self.providers.get("llm", ("", ""))
        return CallMetrics(
            call_id=self._ctx.call_id,
            duration_seconds=round(duration_seconds, 2),
            turns=turns,
            cost=self.cost(duration_seconds),
            latency_avg=average_latency(turns),
            latency_p50=percentile_latency(turns, 50),
            latency_p90=percentile_latency(turns, 90),
            latency_p95=percentile_latency(turns, 95),
            latency_p99=percentile_latency(turns, 99),
            provider_mode=self.provider_mode,
            stt_provider=stt[0],
            tts_provider=tts[0],
            llm_provider=llm[0],
            telephony_provider=self.telephony,
            stt_model=stt[1],
            tts_model=tts[1],
            llm_model=llm[1],
            error_code=error_code,
            context_tokens=self.context_tokens,
        )


def _cache_savings(entry: ProviderPricing, cache_read_tokens: int) -> float:
    """What cache hits saved against the full input rate (0 when the model has no token price)."""
    if "input_per_million" not in entry or cache_read_tokens <= 0:
        return 0.0
    full = entry.get("input_per_million", 0.0)
    cached = entry.get("cache_read_per_million", full)
    return max(full - cached, 0.0) * cache_read_tokens / 1_000_000


async def _guarded(result: Any, call_id: str) -> None:
    try:
        await result
    except Exception:
        log.exception("on_metrics callback failed for call %s", call_id)


class MetricsCollector:
    """Builds ``TurnMetrics`` per turn and ``CallMetrics`` per call; attach with :meth:`observer`.

    ``pricing_table`` is a merged table (``merge_pricing(...)``; default: the built-in prices).
    ``provider_mode`` and ``telephony_provider`` are defaults; the values in each call's ``CallStarted``
    win. ``on_metrics(payload)`` fires after every turn with ``{call_id, turn, cost_so_far, llm_ttft_ms}``
    (sync or async; a failing callback is logged, never raised into the call). ``cost_so_far`` prices the
    usage reported so far: pipeline STT/TTS usage is reported when the call ends, so mid-call it mostly
    reflects LLM tokens and telephony time.
    """

    def __init__(
        self,
        pricing_table: Mapping[str, ProviderPricing] | None = None,
        *,
        on_metrics: MetricsCallback | None = None,
        provider_mode: str = "pipeline",
        telephony_provider: str = "",
    ) -> None:
        self.pricing: Mapping[str, ProviderPricing] = (
            DEFAULT_PRICING if pricing_table is None else pricing_table
        )
        self.on_metrics = on_metrics
        self.provider_mode = provider_mode
        self.telephony_provider = telephony_provider
        self._tasks = BackgroundTasks()
        self._checked: set[tuple[str, str]] = set()

    def warn_if_uncalibrated(self, provider: str, model: str) -> bool:
        """Warn (once per model) when a speech-to-speech model has no price of its own in the table, so
        its cost would be a guess; ``True`` when this call warned. Called at startup for the served
        agent's model and on the first usage of any other (per-call overrides)."""
        if provider != "openai_realtime" or not model or (provider, model) in self._checked:
            return False
        self._checked.add((provider, model))
        if has_calibrated_price(self.pricing, provider, model):
            return False
        log.warning(
            "realtime model %r has no calibrated price: its cost will be estimated with the default "
            "realtime rates and may be far off. Fix: Patter(pricing={'openai_realtime': {'models': "
            "{%r: {'audio_input_per_token': ..., 'audio_output_per_token': ..., 'text_input_per_token': "
            "..., 'text_output_per_token': ...}}}}).",
            model,
            model,
        )
        return True

    def observer(self, bus: EventBus, ctx: CallContext) -> None:
        """The ``Observer`` for ``CallRuntime.observers``: one meter per call, fed by the call's bus; it
        publishes the call's ``CallSummary`` on the same bus."""
        meter = _CallMeter(self, ctx, bus)
        bus.on(CallStarted, meter.on_started)
        bus.on(UsageRecorded, meter.on_usage)
        bus.on(TurnCompleted, meter.on_turn)
        bus.on(CallEnded, meter.on_ended)


__all__ = ["MetricsCallback", "MetricsCollector"]
