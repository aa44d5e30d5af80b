"""Tell a standalone dashboard on this machine about calls (API.md A.1 row 44, A.15).

The SDK posts each call's start and end to ``http://127.0.0.1:PORT/api/dashboard/ingest``. The post is
fire-and-forget: it runs in its own task with a 1 s timeout, never delays or fails the call, and is
skipped entirely when ``PATTER_DASHBOARD_NOTIFY`` is off. No dashboard listening is the normal case and
is only logged at debug level.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import CallStarted, CallSummary
from getpatter.settings import Settings

log = logging.getLogger("getpatter.dashboard")

DEFAULT_DASHBOARD_PORT = 8000
INGEST_PATH = "/api/dashboard/ingest"
NOTIFY_TIMEOUT = 1.0


async def post_ingest(
    payload: dict[str, Any],
    *,
    port: int = DEFAULT_DASHBOARD_PORT,
    token: str = "",
    timeout: float = NOTIFY_TIMEOUT,
) -> bool:
    """POST one ingest body to the local dashboard; True when it answered 2xx. Never raises."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{port}{INGEST_PATH}"
    try:
        # trust_env=False: a loopback post must never be routed through an HTTP(S)_PROXY.
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.post(url, json=payload, headers=headers)
    except (httpx.HTTPError, OSError) as exc:
        log.debug("dashboard notify to %s failed: %s", url, exc)
        return False
    if not response.is_success:
        log.debug("dashboard notify to %s answered %d", url, response.status_code)
    return response.is_success


class DashboardNotifier:
    """Posts call lifecycle events to the standalone dashboard; use :meth:`observer` on every call.

    ``settings`` defaults to the environment (``PATTER_DASHBOARD_NOTIFY``); ``token`` is sent as a Bearer
    token for a dashboard started with one.
    """

    def __init__(
        self,
        *,
        port: int = DEFAULT_DASHBOARD_PORT,
        settings: Settings | None = None,
        token: str = "",
        timeout: float = NOTIFY_TIMEOUT,
    ) -> None:
        self.port = port
        self.token = token
        self.timeout = timeout
        self.enabled = (settings if settings is not None else Settings.from_env()).dashboard_notify
        self._tasks: set[asyncio.Task[bool]] = set()

    def send(self, payload: dict[str, Any]) -> None:
        """Post ``payload`` in the background (no-op when disabled or outside an event loop)."""
        if not self.enabled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.debug("dashboard notify skipped: no running event loop")
            return
        task = loop.create_task(post_ingest(payload, port=self.port, token=self.token, timeout=self.timeout))
        self._tasks.add(task)  # keep a reference until done (the loop only holds weak ones)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for posts still in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def observer(self, bus: EventBus, ctx: CallContext) -> None:
        """An ``Observer`` (``(bus, ctx)``) that posts this call's start and end."""
        if not self.enabled:
            return

        def started(ev: CallStarted) -> None:
            self.send(
                {
                    "call_id": ev.call_id,
                    "caller": ev.caller,
                    "callee": ev.callee,
                    "direction": ev.direction,
                    "started_at": ctx.started_at,
                    "telephony_provider": ev.carrier,
                    "provider_mode": ev.provider_mode,
                }
            )

        def finish(summary: CallSummary) -> None:
            ev, metrics = summary.ended, summary.metrics.to_dict()
            self.send(
                {
                    "call_id": ev.call_id,
                    "caller": ctx.caller,
                    "callee": ctx.callee,
                    "direction": ctx.direction,
                    "started_at": ctx.started_at,
                    "ended_at": ev.at,
                    "status": "failed" if ev.error_code else "completed",
                    "transcript": [
                        {"role": t.get("role"), "text": t.get("text"), "timestamp": t.get("timestamp")}
                        for t in ev.transcript
                    ],
                    "metrics": metrics,
                }
            )

        bus.on(CallStarted, started)
        bus.on(CallSummary, finish)


__all__ = ["DEFAULT_DASHBOARD_PORT", "INGEST_PATH", "DashboardNotifier", "post_ingest"]
