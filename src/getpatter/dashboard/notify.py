"""Feed a standalone dashboard (``patter dashboard``) from this process (API.md A.1 rows 44 and 54).

Where to post: ``Patter(dashboard_notify=...)`` / ``PATTER_DASHBOARD_NOTIFY`` (``notify_target.py``).
Each call's start, every transcript line as it is spoken, the outbound status callbacks and its end
(with the metrics of its ``CallSummary``) are posted to ``POST /api/dashboard/ingest``. Posting never
blocks or fails a call: events go on a bounded queue (the newest are dropped when it is full) that one
background task sends in order, retrying connection errors and 5xx answers with exponential backoff. A
dashboard that is down only costs that task's retries. A 401 (wrong token) or 404 (not a getpatter
dashboard on that port, e.g. your own server) is logged once and turns the notifier off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httpx

from getpatter._pool import ENDPOINT_KEEPALIVE_EXPIRY_S, pooled_client
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import AgentUtterance, CallStarted, CallSummary, UserTranscript
from getpatter.call.progress import CallInitiated, CallStatusChanged, MachineDetected
from getpatter.dashboard.notify_target import (
    DEFAULT_DASHBOARD_PORT,
    INGEST_PATH,
    NotifyTarget,
    resolve_notify_target,
)
from getpatter.settings import Settings

log = logging.getLogger("getpatter.dashboard")

NOTIFY_TIMEOUT = 1.0
QUEUE_SIZE = 1000
RETRIES = 5
BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0

__all__ = [
    "DEFAULT_DASHBOARD_PORT",
    "INGEST_PATH",
    "DashboardNotifier",
    "NotifyTarget",
    "post_ingest",
    "resolve_notify_target",
]


async def post_ingest(
    payload: dict[str, Any],
    *,
    port: int = DEFAULT_DASHBOARD_PORT,
    token: str = "",
    timeout: float = NOTIFY_TIMEOUT,
) -> bool:
    """POST one ingest body to the local dashboard once; True when it answered 2xx. Never raises."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{port}{INGEST_PATH}"
    try:
        # trust_env=False: a loopback post must never be routed through an HTTP(S)_PROXY.
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.post(url, json=payload, headers=headers)
    except (httpx.HTTPError, OSError) as exc:
        log.debug("dashboard notify to %s failed: %s", url, exc)
        return False
    return response.is_success


class DashboardNotifier:
    """Posts call lifecycle events to a standalone dashboard; attach :meth:`observer` to every call and
    :meth:`watch` to the server bus (outbound progress). See the module docstring for the guarantees.

    ``target`` wins; otherwise ``port``/``token`` name a loopback dashboard. ``settings`` (default: the
    environment) can turn it off (``PATTER_DASHBOARD_NOTIFY=0``).
    """

    def __init__(
        self,
        target: NotifyTarget | None = None,
        *,
        port: int = DEFAULT_DASHBOARD_PORT,
        settings: Settings | None = None,
        token: str = "",
        timeout: float = NOTIFY_TIMEOUT,
        queue_size: int = QUEUE_SIZE,
        retries: int = RETRIES,
        backoff_s: float = BACKOFF_S,
    ) -> None:
        self.target = target or NotifyTarget(f"http://127.0.0.1:{port}{INGEST_PATH}", token)
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.queue_size = queue_size
        self.enabled = (settings if settings is not None else Settings.from_env()).dashboard_notify
        self.delivered = 0
        self.dropped = 0
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._idle = asyncio.Event()

    # -- sending -------------------------------------------------------------------------------------
    def send(self, payload: dict[str, Any]) -> None:
        """Queue ``payload`` for the dashboard; returns at once (no-op when off or outside a loop)."""
        if not self.enabled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.debug("dashboard notify skipped: no running event loop")
            return
        if self._queue is None or self._loop is not loop:
            self._queue, self._loop = asyncio.Queue(maxsize=self.queue_size), loop
            self._idle = asyncio.Event()
            self._worker = loop.create_task(self._run(self._queue), name="getpatter-dashboard-notify")
        try:
            self._queue.put_nowait(payload)
            self._idle.clear()
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning(
                    "dashboard %s is not keeping up: %d events dropped", self.target.url, self.dropped
                )

    async def _run(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        # trust_env=False: a loopback post must never be routed through an HTTP(S)_PROXY.
        self._client = pooled_client(
            keepalive_expiry_s=ENDPOINT_KEEPALIVE_EXPIRY_S, timeout=self.timeout, trust_env=False
        )
        try:
            while self.enabled:
                if queue.empty():
                    self._idle.set()
                payload = await queue.get()
                await self._deliver(payload)
        finally:
            self._idle.set()
            await self._client.aclose()

    async def _deliver(self, payload: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {self.target.token}"} if self.target.token else {}
        assert self._client is not None
        for attempt in range(self.retries + 1):
            try:
                response = await self._client.post(self.target.url, json=payload, headers=headers)
            except (httpx.HTTPError, OSError) as exc:
                log.debug("dashboard notify to %s failed (attempt %d): %s", self.target.url, attempt + 1, exc)
            else:
                if response.is_success:
                    self.delivered += 1
                    return
                code = response.status_code
                if code in (401, 403, 404):
                    why = "is not a getpatter dashboard" if code == 404 else "rejected the token"
                    level = logging.INFO if code == 404 else logging.WARNING  # 404: e.g. our own server
                    log.log(level, "%s %s (HTTP %d): dashboard notify off", self.target.url, why, code)
                    self.enabled = False
                    return
                if response.status_code < 500:  # a body it refuses: retrying cannot help
                    log.debug("dashboard refused an event (HTTP %d): %s", response.status_code, response.text)
                    self.dropped += 1
                    return
            if attempt < self.retries:
                await asyncio.sleep(min(self.backoff_s * 2**attempt, MAX_BACKOFF_S))
        self.dropped += 1

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout``) until everything queued was delivered or given up."""
        if self._worker is None or self._worker.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def aclose(self, timeout: float = 2.0) -> None:
        """Give queued events ``timeout`` to go out, then stop the background task."""
        await self.drain(timeout)
        worker, self._worker, self._queue = self._worker, None, None
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(BaseException):
                await worker

    # -- what is sent ------------------------------------------------------------------------------
    def observer(self, bus: EventBus, ctx: CallContext) -> None:
        """An ``Observer``: posts this call's start, each transcript line and its end (with metrics)."""
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

        def line(role: str) -> Callable[[Any], None]:
            def post(ev: UserTranscript | AgentUtterance) -> None:
                if ev.text:
                    self.send(
                        {
                            "event": "transcript_line",
                            "call_id": ev.call_id,
                            "role": role,
                            "text": ev.text,
                            "timestamp": ev.at,
                        }
                    )

            return post

        def finish(summary: CallSummary) -> None:
            ev = summary.ended
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
                    "metrics": summary.metrics.to_dict(),
                }
            )

        bus.on(CallStarted, started)
        bus.on(UserTranscript, line("user"))
        bus.on(AgentUtterance, line("assistant"))
        bus.on(CallSummary, finish)

    def watch(self, events: EventBus) -> Callable[[], None]:
        """Post outbound progress from the server bus (dial, status callbacks, AMD verdict); returns the
        function that stops it."""

        def initiated(ev: CallInitiated) -> None:
            self.send(
                {
                    "call_id": ev.call_id,
                    "status": "initiated",
                    "caller": ev.from_,
                    "callee": ev.to,
                    "direction": "outbound",
                    "started_at": ev.at,
                    "telephony_provider": ev.carrier,
                }
            )

        def status(ev: CallStatusChanged) -> None:
            if ev.direction == "outbound":
                self.send({"event": "call_status", "call_id": ev.call_id, "status": ev.status})

        def machine(ev: MachineDetected) -> None:
            self.send(
                {"event": "call_status", "call_id": ev.call_id, "answered_by": ev.result.classification}
            )

        offs = [
            events.on(CallInitiated, initiated),
            events.on(CallStatusChanged, status),
            events.on(MachineDetected, machine),
        ]

        def unsubscribe() -> None:
            for off in offs:
                off()

        return unsubscribe
