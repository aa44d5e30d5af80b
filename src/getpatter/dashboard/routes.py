"""The dashboard's HTTP surface (API.md B.2): the single-page UI, its JSON API, SSE and exports.

``add_dashboard_routes(app, store, token=...)`` mounts everything on any FastAPI app: the embedded server
(``serve(dashboard=True)``) and the standalone ``getpatter dashboard`` process use the same routes. Every
route here requires the token when one is set; ``/health``, webhooks and media sockets are never added here,
so they are never token-protected.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Iterable
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from getpatter._version import __version__
from getpatter.dashboard.auth import require_token
from getpatter.dashboard.csrf import same_origin_guard
from getpatter.dashboard.persistence import parse_iso
from getpatter.dashboard.store import Item, MetricsStore, calls_to_csv, calls_to_json

KEEPALIVE_SECONDS = 30.0
#: Open SSE streams per dashboard at most (``PATTER_MAX_SSE_SUBSCRIBERS``); more get 503.
MAX_SSE_SUBSCRIBERS = 32
EXPORT_LIMIT = 10_000
_NO_STORE = {"Cache-Control": "no-store"}


@cache
def index_html() -> str:
    """The dashboard page, read once from the package data (``dashboard/static/index.html``)."""
    return (resources.files("getpatter.dashboard") / "static" / "index.html").read_text(encoding="utf-8")


def _page() -> HTMLResponse:
    """The page with a fresh CSP nonce on its inline ``<script>``/``<style>``: nothing else may run or
    load, so even a transcript that slipped into the DOM as markup could not execute (an inline handler
    or script never runs). ``'self'`` lets the softphone's own scripts load (``dashboard/phone.py``: an
    AudioWorklet module cannot carry a nonce); every other same-origin response is JSON with ``nosniff``."""
    nonce = secrets.token_urlsafe(16)
    html = index_html().replace("<script>", f'<script nonce="{nonce}">')
    html = html.replace("<style>", f'<style nonce="{nonce}">')
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}' 'self'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        **_NO_STORE,
    }
    return HTMLResponse(html, headers=headers)


def parse_when(value: str | None) -> float | None:
    """A ``from``/``to`` query value -> unix seconds. Empty = no bound; a bare date is UTC midnight.

    Raises ``ValueError`` for anything that is not an ISO-8601 date or date-time.
    """
    if value is None or not value.strip():
        return None
    ts = parse_iso(value.strip())
    if ts is None:
        raise ValueError(f"not an ISO-8601 date: {value!r}")
    return ts


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def _turn_latency(turn: dict[str, Any]) -> float:
    latency = turn.get("latency") or {}
    for key in ("agent_response_ms", "total_ms"):
        value = latency.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return 0.0


def overview(store: MetricsStore, version: str) -> dict[str, Any]:
    """``get_aggregates()`` (B.2 shape) plus what the page charts: total minutes and per-turn latency
    percentiles over every visible completed call."""
    data = store.get_aggregates()
    data["sdk_version"] = version
    calls = store.get_calls_in_range()
    seconds = sum(float((c.get("metrics") or {}).get("duration_seconds") or 0.0) for c in calls)
    latencies = [v for c in calls for t in c.get("turns") or [] if (v := _turn_latency(t)) > 0]
    data["total_minutes"] = round(seconds / 60.0, 2)
    data["latency_p50_ms"] = round(_percentile(latencies, 50), 1)
    data["latency_p95_ms"] = round(_percentile(latencies, 95), 1)
    data["turns_measured"] = len(latencies)
    return data


def _sse(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n"


class EventStreams:
    """The SSE responses of one mounted dashboard.

    Servers wait for open responses before they stop, and an SSE response never ends by itself, so
    whoever stops the server calls :meth:`close` first (``close_event_streams(app)``): every open stream
    ends and new ones end at once.
    """

    def __init__(
        self, store: MetricsStore, keepalive: float = KEEPALIVE_SECONDS, max_open: int | None = None
    ) -> None:
        self.store = store
        self.keepalive = keepalive
        self.max_open = max_open if max_open is not None else max_sse_subscribers()
        self.closed = False
        self._queues: set[asyncio.Queue[Item]] = set()

    @property
    def open_count(self) -> int:
        return len(self._queues)

    def close(self) -> None:
        """End every open stream (call from the server's event loop)."""
        self.closed = True
        for queue in list(self._queues):
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    async def stream(self) -> AsyncIterator[str]:
        """The live event stream as SSE text chunks.

        A ``: keepalive`` comment goes out after ``keepalive`` idle seconds; the stream ends when the
        store drops this subscriber for falling behind (the browser reconnects and refetches) or on
        :meth:`close`.
        """
        if self.closed:
            return
        queue = self.store.subscribe()
        self._queues.add(queue)
        try:
            yield "retry: 2000\n: connected\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.keepalive)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if item is None:
                    return
                yield _sse(str(item["type"]), item["data"])
        finally:
            self._queues.discard(queue)
            self.store.unsubscribe(queue)

    def response(self) -> Response:
        if self.open_count >= self.max_open:
            headers = {**_NO_STORE, "Retry-After": "5"}
            return JSONResponse({"error": "too many open event streams"}, status_code=503, headers=headers)
        headers = {**_NO_STORE, "X-Accel-Buffering": "no"}
        return StreamingResponse(self.stream(), media_type="text/event-stream", headers=headers)


def max_sse_subscribers() -> int:
    raw = os.environ.get("PATTER_MAX_SSE_SUBSCRIBERS", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else MAX_SSE_SUBSCRIBERS


def close_event_streams(app: FastAPI) -> None:
    """End the open SSE streams of the dashboard mounted on ``app`` (no-op without one). Call it before
    stopping the server, or shutdown waits for the browsers to go away."""
    streams = getattr(app.state, "dashboard_events", None)
    if isinstance(streams, EventStreams):
        streams.close()


def _export(store: MetricsStore, fmt: str, start: str | None, end: str | None) -> Response:
    if fmt not in ("csv", "json"):
        return _bad_request("format must be 'csv' or 'json'")
    try:
        calls = store.get_calls_in_range(parse_when(start), parse_when(end))[:EXPORT_LIMIT]
    except ValueError as exc:
        return _bad_request(str(exc))
    body = calls_to_csv(calls) if fmt == "csv" else calls_to_json(calls)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    disposition = f'attachment; filename="patter_calls.{fmt}"'
    return Response(body, media_type=media, headers={"Content-Disposition": disposition, **_NO_STORE})


def add_dashboard_routes(
    app: FastAPI,
    store: MetricsStore,
    *,
    token: str = "",
    version: str = __version__,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
    allowed_hosts: Iterable[str] = (),
) -> EventStreams:
    """Mount the dashboard UI (``/``, ``/dashboard``), ``/api/dashboard/*`` and ``/api/v1/*`` on ``app``.

    ``token``: when non-empty every route answers 401 ``{"detail": "Unauthorized"}`` unless the request
    carries it (``Authorization: Bearer`` or ``?token=``); without one, requests must come from this
    machine's own origin (``dashboard/csrf.py``; ``allowed_hosts`` adds ``Host`` names besides loopback).
    ``keepalive_seconds`` is the SSE idle interval.
    Returns the SSE streams (also ``app.state.dashboard_events``): close them before stopping the server.
    """
    streams = EventStreams(store, keepalive_seconds)
    guards = [Depends(require_token(token)), Depends(same_origin_guard(token, allowed_hosts))]
    router = APIRouter(dependencies=guards)
    _add_ui_routes(router, store, version, streams)
    _add_v1_routes(router, store, version, streams)
    app.include_router(router)
    app.state.dashboard_events = streams
    return streams


def _add_ui_routes(router: APIRouter, store: MetricsStore, version: str, streams: EventStreams) -> None:
    @router.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return _page()

    @router.get("/dashboard", include_in_schema=False)
    async def page_alias() -> HTMLResponse:
        return _page()

    @router.get("/api/dashboard/calls")
    async def calls(limit: int = 50, offset: int = 0) -> JSONResponse:
        return JSONResponse(store.get_calls(limit, offset), headers=_NO_STORE)

    @router.get("/api/dashboard/calls/{call_id:path}")
    async def call(call_id: str) -> JSONResponse:
        record = store.get_call(call_id)
        if record is None:
            return JSONResponse({"error": "Not found"}, status_code=404)
        return JSONResponse(record, headers=_NO_STORE)

    @router.get("/api/dashboard/active")
    async def active() -> JSONResponse:
        return JSONResponse(store.get_active_calls(), headers=_NO_STORE)

    @router.get("/api/dashboard/aggregates")
    async def aggregates() -> JSONResponse:
        return JSONResponse(overview(store, version), headers=_NO_STORE)

    @router.get("/api/dashboard/events")
    async def events() -> Response:
        return streams.response()

    @router.get("/api/dashboard/export/calls")
    async def export(request: Request, to: str | None = None) -> Response:
        fmt = request.query_params.get("format", "json").lower()
        return _export(store, fmt, request.query_params.get("from"), to)

    @router.delete("/api/dashboard/calls/{call_id:path}")
    async def delete_one(call_id: str) -> JSONResponse:
        deleted = store.delete_calls([call_id])
        return JSONResponse({"deleted": deleted, "count": len(deleted)})

    @router.post("/api/dashboard/calls/delete")
    async def delete_many(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _bad_request('body must be JSON: {"call_ids": [...]}')
        ids = body.get("call_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return _bad_request("call_ids must be a list of strings")
        deleted = store.delete_calls(ids)
        return JSONResponse({"deleted": deleted, "count": len(deleted)})


def _add_v1_routes(router: APIRouter, store: MetricsStore, version: str, streams: EventStreams) -> None:
    @router.get("/api/v1/calls")
    async def calls(limit: int = 50, offset: int = 0) -> JSONResponse:
        limit, offset = max(0, min(limit, 1000)), max(0, offset)
        data = store.get_calls(limit, offset)
        pagination = {"limit": limit, "offset": offset, "count": len(data), "total": store.call_count}
        return JSONResponse({"data": data, "pagination": pagination}, headers=_NO_STORE)

    @router.get("/api/v1/calls/active")  # before /calls/{call_id}
    async def active() -> JSONResponse:
        data = store.get_active_calls()
        return JSONResponse({"data": data, "count": len(data)}, headers=_NO_STORE)

    @router.get("/api/v1/calls/{call_id:path}")
    async def call(call_id: str) -> JSONResponse:
        record = store.get_call(call_id)
        if record is None:
            return JSONResponse({"error": "Call not found"}, status_code=404)
        return JSONResponse({"data": record}, headers=_NO_STORE)

    @router.get("/api/v1/analytics/overview")
    async def analytics_overview() -> JSONResponse:
        return JSONResponse({"data": overview(store, version)}, headers=_NO_STORE)

    @router.get("/api/v1/analytics/costs")
    async def analytics_costs(request: Request, to: str | None = None) -> JSONResponse:
        start = request.query_params.get("from")
        try:
            calls = store.get_calls_in_range(parse_when(start), parse_when(to))
        except ValueError as exc:
            return _bad_request(str(exc))
        parts = ("stt", "tts", "llm", "telephony")
        costs = [(c.get("metrics") or {}).get("cost") or {} for c in calls]
        breakdown = {k: round(sum(float(c.get(k) or 0.0) for c in costs), 6) for k in parts}
        data = {
            "total_cost": round(sum(float(c.get("total") or 0.0) for c in costs), 6),
            "breakdown": breakdown,
            "calls_analyzed": len(calls),
            "period": {"from": start or None, "to": to or None},
        }
        return JSONResponse({"data": data}, headers=_NO_STORE)

    @router.get("/api/v1/export/csv")
    async def export_csv(request: Request, to: str | None = None) -> Response:
        return _export(store, "csv", request.query_params.get("from"), to)

    @router.get("/api/v1/export/json")
    async def export_json(request: Request, to: str | None = None) -> Response:
        return _export(store, "json", request.query_params.get("from"), to)

    @router.get("/api/v1/events")
    async def events() -> Response:
        return streams.response()


__all__ = [
    "KEEPALIVE_SECONDS",
    "EventStreams",
    "add_dashboard_routes",
    "close_event_streams",
    "index_html",
    "overview",
    "parse_when",
]
