"""What a ``Patter`` records about its calls: the metrics store, the call log, the standalone dashboard.

Held by :class:`getpatter.patter.Patter` (one per client). It builds the observers every call of an app
gets (metrics, store, process-wide events, tracing, dashboard notifier, call log) and feeds outbound and
refused calls to the store, so ``Patter`` itself only resolves options and serves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from getpatter.call.bus import EventBus
from getpatter.dashboard.notify_target import NotifyTarget
from getpatter.metrics.pricing import ProviderPricing
from getpatter.settings import Settings

if TYPE_CHECKING:
    from getpatter.agent import Agent
    from getpatter.call.session import Observer
    from getpatter.dashboard.notify import DashboardNotifier
    from getpatter.dashboard.persistence import CallLogWriter
    from getpatter.dashboard.store import MetricsStore

log = logging.getLogger("getpatter")
Callback = Callable[..., Any]


class Telemetry:
    """The per-client recording side: created lazily, shared by every app the client builds."""

    def __init__(
        self,
        *,
        events: EventBus,
        pricing: dict[str, ProviderPricing],
        telephony_provider: str,
        log_root: Path | None,
        notify_target: NotifyTarget | None,
        settings: Settings,
    ) -> None:
        self._events = events
        self._pricing = pricing
        self._telephony_provider = telephony_provider
        self._log_root = log_root
        self._notify_target = notify_target
        self._settings = settings
        self._store: MetricsStore | None = None
        self._notifier: DashboardNotifier | None = None
        self._log_writer: CallLogWriter | None = None
        self._unfeed: Callable[[], None] | None = None  # the outbound feed of the last app built

    @property
    def store(self) -> MetricsStore:
        """Calls this client has seen (live and finished), as the dashboard shows them."""
        if self._store is None:
            from getpatter.dashboard.store import MetricsStore

            self._store = MetricsStore(log_root=self._log_root)
        return self._store

    def observers(self, agent: Agent, on_metrics: Callback | None) -> list[Observer]:
        """The observers every call of a new app gets; the call log's past calls load into the store."""
        from getpatter.dashboard.persistence import CallLogWriter, agent_snapshot
        from getpatter.metrics.collector import MetricsCollector

        store = self.store
        collector = MetricsCollector(
            self._pricing,
            on_metrics=on_metrics,
            provider_mode=agent.provider,
            telephony_provider=self._telephony_provider,
        )
        if agent.provider == "openai_realtime":
            collector.warn_if_uncalibrated("openai_realtime", agent.model)
        observers: list[Observer] = [collector.observer, store.store_observer, self._forward_events]
        from getpatter.tracing import is_tracing_enabled, tracing_observer

        if is_tracing_enabled():
            observers.append(tracing_observer)
        if self._notify_target is not None:
            from getpatter.dashboard.notify import DashboardNotifier

            if self._notifier is None:
                on = replace(self._settings, dashboard_notify=True)  # the target already says "on"
                self._notifier = DashboardNotifier(self._notify_target, settings=on)
            observers.append(self._notifier.observer)
        if self._log_root is not None:
            writer = CallLogWriter(self._log_root, self._settings, agent=agent_snapshot(agent))
            if writer.enabled:
                added = store.hydrate(self._log_root)
                if added:
                    log.info("loaded %d past calls from %s", added, self._log_root)
                observers.append(writer.observer)
                self._log_writer = writer
        return observers

    def feed_outbound(self) -> None:
        """Outbound calls reach the dashboard (and call logs) from the dial on (dashboard/outbound_feed);
        refused calls are counted there. Replaces the feed of the previous app built."""
        from getpatter.call.progress import CallRefused
        from getpatter.dashboard.outbound_feed import feed_outbound_calls

        if self._unfeed is not None:
            self._unfeed()
        unfeed = feed_outbound_calls(self._events, self.store, self._log_writer)
        unwatch = self._notifier.watch(self._events) if self._notifier is not None else None
        store = self.store
        # Calls refused at the door (server at its limit) are counted on the dashboard's overview.
        unrefused = self._events.on(
            CallRefused, lambda ev: store.record_call_refused(ev.call_id, ev.direction, ev.reason)
        )

        def unsubscribe() -> None:
            unfeed()
            unrefused()
            if unwatch is not None:
                unwatch()

        self._unfeed = unsubscribe

    def _forward_events(self, bus: EventBus, ctx: object) -> None:
        """Every call's events also reach ``phone.events``, the process-wide bus (API.md C14)."""
        bus.on(None, self._events.emit)

    async def flush(self, timeout: float) -> None:
        """Wait until every finished call's log is on disk, and (briefly) for the standalone dashboard."""
        if self._log_writer is not None:
            await self._log_writer.flush(timeout)
        if self._notifier is not None:  # restarts by itself on the next call
            await self._notifier.aclose(min(timeout, 2.0))


__all__ = ["Telemetry"]
