"""The standalone dashboard app (``getpatter dashboard --port 8000``, API.md A.15).

The same UI and API as the embedded dashboard, over its own in-memory ``MetricsStore``, plus
``GET /health`` and ``POST /api/dashboard/ingest``, where SDK processes on this machine push call
lifecycle events (see ``dashboard/notify.py``). It can also start from a call-log directory.
``server/dashboard_process.py`` runs it as a process.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from getpatter._body_limit import BodyLimitMiddleware
from getpatter._version import __version__
from getpatter.dashboard.auth import require_token
from getpatter.dashboard.csrf import same_origin_guard
from getpatter.dashboard.persistence import parse_iso
from getpatter.dashboard.routes import KEEPALIVE_SECONDS, add_dashboard_routes
from getpatter.dashboard.store import MetricsStore

log = logging.getLogger("getpatter.dashboard")

MAX_INGEST_BYTES = 2 * 1024 * 1024
#: Live (started, not ended) calls the standalone store tracks from ingests at most.
MAX_LIVE_CALLS = 1000
#: Characters per text field, transcript line, and lines per transcript.
MAX_FIELD_CHARS = 256
MAX_LINE_CHARS = 10_000
MAX_TRANSCRIPT_LINES = 2000
#: Nesting of ``metrics`` at most.
MAX_DEPTH = 16
_TEXT_FIELDS = ("caller", "callee", "status", "telephony_provider", "provider_mode")
_TIME_FIELDS = ("started_at", "ended_at")


class IngestError(ValueError):
    """A body that does not follow the ingest contract; the message is safe to return."""


def _call_id(body: dict[str, Any]) -> str:
    value = body.get("call_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise IngestError("missing call_id")
    if len(value) > 256:
        raise IngestError("call_id is longer than 256 characters")
    return value


def _timestamp(name: str, value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value < 1e11:
            raise IngestError(f"{name} must be a finite unix time in seconds")
        return float(value)
    parsed = parse_iso(value)
    if parsed is None:
        raise IngestError(f"{name} must be unix seconds or an ISO-8601 time")
    return parsed


def _transcript(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise IngestError("transcript must be a list")
    if len(value) > MAX_TRANSCRIPT_LINES:
        raise IngestError(f"transcript has more than {MAX_TRANSCRIPT_LINES} lines")
    lines: list[dict[str, Any]] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("role"), str):
            raise IngestError("transcript entries must be objects with a string role and text")
        if not isinstance(entry.get("text"), str):
            raise IngestError("transcript entries must be objects with a string role and text")
        if len(entry["role"]) > MAX_FIELD_CHARS or len(entry["text"]) > MAX_LINE_CHARS:
            raise IngestError(
                f"transcript role/text longer than {MAX_FIELD_CHARS}/{MAX_LINE_CHARS} characters"
            )
        line: dict[str, Any] = {"role": entry["role"], "text": entry["text"]}
        if entry.get("timestamp") is not None:
            line["timestamp"] = _timestamp("transcript timestamp", entry["timestamp"])
        lines.append(line)
    return lines


def _check_finite(value: Any, where: str, depth: int) -> None:
    """Every number in ``value`` finite (a NaN in a stored call breaks every aggregate); bounded nesting."""
    if depth > MAX_DEPTH:
        raise IngestError(f"{where} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise IngestError(f"{where} holds a non-finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{str(key)[:40]}", depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item, where, depth + 1)


def _no_constants(name: str) -> Any:
    raise IngestError(f"{name} is not a JSON number (NaN and Infinity are refused)")


def load_ingest_json(raw: bytes) -> Any:
    """Strict JSON: ``NaN``/``Infinity`` literals raise ``IngestError``, other errors ``ValueError``."""
    return json.loads(raw, parse_constant=_no_constants)


def parse_ingest(body: Any) -> dict[str, Any]:
    """The ingest body as clean store data (only known fields, checked types); raises ``IngestError``."""
    if not isinstance(body, dict):
        raise IngestError("body must be a JSON object")
    data: dict[str, Any] = {"call_id": _call_id(body)}
    for name in _TEXT_FIELDS:
        if body.get(name) is not None:
            if not isinstance(body[name], str):
                raise IngestError(f"{name} must be a string")
            if len(body[name]) > MAX_FIELD_CHARS:
                raise IngestError(f"{name} is longer than {MAX_FIELD_CHARS} characters")
            data[name] = body[name]
    if body.get("direction") is not None:
        if body["direction"] not in ("inbound", "outbound"):
            raise IngestError("direction must be 'inbound' or 'outbound'")
        data["direction"] = body["direction"]
    for name in _TIME_FIELDS:
        if body.get(name) is not None:
            data[name] = _timestamp(name, body[name])
    if body.get("transcript") is not None:
        data["transcript"] = _transcript(body["transcript"])
    if body.get("metrics") is not None:
        if not isinstance(body["metrics"], dict):
            raise IngestError("metrics must be an object")
        _check_finite(body["metrics"], "metrics", 0)
        data["metrics"] = body["metrics"]
    return data


def _live_event(store: MetricsStore, body: dict[str, Any], call_id: str) -> tuple[str, str]:
    """``event: transcript_line`` (``role``, ``text``, optional ``timestamp``) and ``event: call_status``
    (``status`` and/or ``answered_by``): what an SDK posts while a call runs (``dashboard/notify.py``)."""
    kind = body.get("event")
    if kind == "transcript_line":
        role, text = body.get("role"), body.get("text")
        if role not in ("user", "assistant") or not isinstance(text, str):
            raise IngestError("transcript_line needs role 'user' or 'assistant' and a string text")
        stamp = body.get("timestamp")
        when = _timestamp("timestamp", stamp) if stamp is not None else None
        store.record_transcript_line(call_id, role, text, when)
        return call_id, "transcript_line"
    if kind == "call_status":
        status, answered_by = body.get("status"), body.get("answered_by")
        if status is not None and (not isinstance(status, str) or not status or len(status) > 64):
            raise IngestError("status must be a short string")
        if answered_by is not None and answered_by not in ("human", "machine", "fax", "unknown"):
            raise IngestError("answered_by must be human, machine, fax or unknown")
        current = (store.get_call(call_id) or {}).get("status") or "in-progress"
        extra = {"answered_by": answered_by} if answered_by is not None else {}
        store.update_call_status(call_id, status or current, **extra)
        return call_id, "call_status"
    raise IngestError("event must be 'transcript_line' or 'call_status' (or absent)")


def ingest(store: MetricsStore, body: Any) -> tuple[str, str]:
    """Apply one ingest body to ``store`` (A.15); returns ``(call_id, event recorded)``. A body with an
    ``event`` field is a live update of a running call (see :func:`_live_event`)."""
    if isinstance(body, dict) and body.get("event") is not None:
        return _live_event(store, body, _call_id(body))
    data = parse_ingest(body)
    call_id = str(data["call_id"])
    live = "ended_at" not in data and store.get_active(call_id) is None
    if live and len(store.get_active_calls()) >= MAX_LIVE_CALLS:
        raise IngestError(f"more than {MAX_LIVE_CALLS} live calls; end some first")
    if data.get("status") == "initiated":
        store.record_call_initiated(data)
        return call_id, "call_initiated"
    if "ended_at" in data:
        metrics = data.pop("metrics", None)
        if metrics is not None:
            metrics = {**metrics, "call_id": data["call_id"]}
        store.record_call_end(data, metrics)
        return call_id, "call_end"
    data.pop("metrics", None)
    store.record_call_start(data)
    return call_id, "call_start"


def _fail(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


def create_dashboard_app(
    store: MetricsStore | None = None,
    token: str = "",
    *,
    log_dir: str | Path | None = None,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
    version: str = __version__,
    allowed_hosts: Iterable[str] = (),
) -> FastAPI:
    """The standalone dashboard app. ``store`` defaults to a fresh in-memory one; ``log_dir`` (a
    persistence root) is loaded into it first. ``token`` protects everything except ``/health``."""
    store = store if store is not None else MetricsStore()
    if log_dir is not None:
        added = store.hydrate(Path(log_dir).expanduser())
        log.info("loaded %d past calls from %s", added, log_dir)
    app = FastAPI(
        title="getpatter dashboard", version=version, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.metrics_store = store

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "mode": "dashboard"})

    guards = [Depends(require_token(token)), Depends(same_origin_guard(token, allowed_hosts))]
    router = APIRouter(dependencies=guards)

    @router.post("/api/dashboard/ingest")
    async def ingest_route(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_INGEST_BYTES:
            return _fail("body too large", 413)
        raw = await request.body()
        if len(raw) > MAX_INGEST_BYTES:
            return _fail("body too large", 413)
        try:
            body = load_ingest_json(raw)
        except IngestError as exc:
            return _fail(str(exc))
        except ValueError:
            return _fail("body must be JSON")
        try:
            call_id, event = ingest(store, body)
        except IngestError as exc:
            return _fail(str(exc))
        return JSONResponse({"ok": True, "call_id": call_id, "event": event})

    app.include_router(router)
    add_dashboard_routes(
        app,
        store,
        token=token,
        version=version,
        keepalive_seconds=keepalive_seconds,
        allowed_hosts=allowed_hosts,
    )
    # Chunked ingests too are refused as soon as they pass the cap, not after being read whole.
    app.add_middleware(BodyLimitMiddleware, caps={"/api/dashboard/ingest": MAX_INGEST_BYTES})
    return app


__all__ = ["IngestError", "create_dashboard_app", "ingest", "parse_ingest"]
