"""Per-call logs on disk (API.md C.2-C.6): the writer observer, retention, and the readers hydrate uses.

Layout: ``<root>/calls/YYYY/MM/DD/<call_id>/{metadata.json, transcript.jsonl, events.jsonl}``, dated by
the UTC day the call started. Guarantees:

* Nothing here blocks the event loop: each call gets one writer task that runs its file jobs in a worker
  thread, one at a time, in event order.
* Nothing raises into the call: a failing write logs a warning and the call goes on.
* No file is ever half-written: ``metadata.json`` is replaced atomically (tmp file + fsync + rename) and
  each JSONL row is one ``write`` of a whole line on an append-only descriptor.
* Only ``metadata.json`` caller/callee are redacted; transcripts may hold spoken PII (gate file access).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from getpatter._tasks import BackgroundTasks
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import (
    CallEnded,
    CallStarted,
    CallSummary,
    ErrorOccurred,
    ToolCalled,
    ToolResult,
    TurnCompleted,
)
from getpatter.metrics.aggregate import TurnMeasurer
from getpatter.metrics.describe import describe_agent
from getpatter.metrics.model import INTERRUPTED_TEXT, CallMetrics
from getpatter.settings import Settings, redact_phone_number

log = logging.getLogger("getpatter.persistence")

SCHEMA_VERSION = "1.0"
DELETED_IDS_FILE = ".deleted_call_ids.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_Job = Callable[[], None]


# -- small pure helpers ------------------------------------------------------------------------------
def sanitize_call_id(call_id: str) -> str:
    """``call_id`` as one safe path segment (C.2): no control chars, ``[A-Za-z0-9._-]`` only (others ->
    ``_``), at most 64 chars, no leading/trailing dots, never empty (``unknown``)."""
    visible = "".join(ch for ch in str(call_id) if unicodedata.category(ch) != "Cc")
    safe = _UNSAFE.sub("_", visible)[:64].strip(".")
    return safe or "unknown"


def iso_utc(ts: float) -> str:
    """Unix seconds -> ``2026-04-23T18:02:12.413Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: Any) -> float | None:
    """ISO-8601 (``Z`` or offset; naive = UTC) -> unix seconds, or None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def call_dir(root: Path, call_id: str, started_at: float) -> Path:
    day = datetime.fromtimestamp(started_at, UTC)
    return root / "calls" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / sanitize_call_id(call_id)


def agent_snapshot(agent: Any) -> dict[str, Any]:
    """The ``agent`` object of ``metadata.json``: the real models and voices (``describe_agent``)."""
    return describe_agent(agent)


# -- durable file primitives -------------------------------------------------------------------------
def write_json_atomic(path: Path, data: Any) -> None:
    """Write pretty JSON to ``path`` so readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def append_jsonl(path: Path, row: Mapping[str, Any]) -> None:
    """Append one row as one whole line (a single ``write`` on an ``O_APPEND`` descriptor)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


# -- retention ---------------------------------------------------------------------------------------
def _numeric_dirs(parent: Path) -> Iterator[tuple[int, Path]]:
    with contextlib.suppress(OSError):
        for child in sorted(parent.iterdir()):
            if child.is_dir() and child.name.isdigit():
                yield int(child.name), child


def sweep_retention(root: Path, days: int, *, now: float | None = None) -> int:
    """Delete ``calls/Y/M/D`` day dirs entirely older than ``now - days*86400``; 0 days = keep all.

    A day is removed only once its last moment is past the cutoff. Empty month and year dirs are then
    removed. Returns the number of day dirs deleted. Never raises.
    """
    if days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - days * 86400
    removed = 0
    for year, year_dir in _numeric_dirs(root / "calls"):
        for month, month_dir in _numeric_dirs(year_dir):
            for day, day_dir in _numeric_dirs(month_dir):
                try:
                    day_end = datetime(year, month, day, tzinfo=UTC).timestamp() + 86400
                except ValueError:
                    continue
                if day_end <= cutoff:
                    shutil.rmtree(day_dir, ignore_errors=True)
                    removed += 1
            with contextlib.suppress(OSError):
                month_dir.rmdir()  # only succeeds when empty
        with contextlib.suppress(OSError):
            year_dir.rmdir()
    return removed


# -- the writer --------------------------------------------------------------------------------------
class CallLogWriter:
    """Writes each call's log under ``root``; attach with :meth:`observer`.

    ``agent`` is the ``metadata.json`` agent snapshot (see :func:`agent_snapshot`). ``rand_byte`` decides
    the ~2% retention sweeps on call start (a sweep runs when it returns < 5; default: a random byte).
    If ``root`` cannot be created, a warning is logged and ``enabled`` is False (calls run unlogged).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        settings: Settings | None = None,
        *,
        agent: Mapping[str, Any] | None = None,
        rand_byte: Callable[[], int] | None = None,
    ) -> None:
        self.root = Path(root)
        self.settings = settings or Settings()
        self.agent = dict(agent or {})
        self._rand_byte = rand_byte or (lambda: secrets.randbelow(256))
        self.workers = BackgroundTasks(log)  # one per call with writes pending
        self.enabled = True
        try:
            (self.root / "calls").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("call logs disabled: cannot create %s (%s)", self.root, exc)
            self.enabled = False

    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until every call's pending writes are on disk (graceful shutdown, the demo's exit)."""
        await self.workers.wait(timeout)

    def record_unconnected(self, record: Mapping[str, Any]) -> None:
        """The log of an outbound call that ended before any media (no answer, busy, failed, canceled):
        only ``metadata.json``, from the dashboard record, written off the loop (``flush`` waits)."""
        call_id, started = str(record["call_id"]), float(record.get("started_at") or time.time())
        mode, ended = self.settings.redact_phone, record.get("ended_at")
        metrics = record.get("metrics") or {}
        meta = {
            "schema_version": SCHEMA_VERSION,
            "call_id": call_id,
            "trace_id": None,
            "started_at": iso_utc(started),
            "ended_at": iso_utc(float(ended)) if ended else None,
            "duration_ms": round(float(metrics.get("duration_seconds") or 0.0) * 1000, 1),
            "status": str(record.get("status") or "failed"),
            "caller": redact_phone_number(str(record.get("caller") or ""), mode),
            "callee": redact_phone_number(str(record.get("callee") or ""), mode),
            "direction": record.get("direction") or "outbound",
            "telephony_provider": record.get("telephony_provider") or "",
            "agent": dict(self.agent),
            "turns": 0,
            "cost": metrics.get("cost"),
            "latency": None,
            "error": None,
        }
        path = call_dir(self.root, call_id, started) / "metadata.json"
        self.workers.spawn(asyncio.to_thread(self._write_quietly, path, meta), f"call log of {call_id}")

    @staticmethod
    def _write_quietly(path: Path, meta: dict[str, Any]) -> None:
        try:
            write_json_atomic(path, meta)
        except OSError as exc:
            log.warning("call %s: call log write failed: %s", meta.get("call_id"), exc)

    def observer(self, bus: EventBus, ctx: CallContext) -> None:
        """Log one call. Its end is written from its ``CallSummary``, so a ``MetricsCollector`` must ride
        on the same bus (``Patter`` attaches one to every call)."""
        if self.enabled:
            _CallLog(self, bus, ctx)


class _CallLog:
    """One call's files and its ordered, off-loop write queue."""

    def __init__(self, writer: CallLogWriter, bus: EventBus, ctx: CallContext) -> None:
        self._w = writer
        self._ctx = ctx
        self._dir = call_dir(writer.root, ctx.call_id, ctx.started_at)
        self._measurer = TurnMeasurer()
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._turns = 0
        self._start: dict[str, Any] | None = None
        bus.on(CallStarted, self._on_started)
        bus.on(TurnCompleted, self._on_turn)
        bus.on(ToolCalled, self._on_tool_called)
        bus.on(ToolResult, self._on_tool_result)
        bus.on(ErrorOccurred, lambda ev: self._event(ev.at, "error", {"error_code": ev.error_code}))
        bus.on(CallSummary, self._on_ended)

    # -- queue ---------------------------------------------------------------------------------------
    def _submit(self, job: _Job) -> None:
        if self._worker is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # emitted outside a loop (scripts, sync tests): write inline
                self._safely(job)
                return
            self._worker = self._w.workers.spawn(self._run(), "call-log")
        self._queue.put_nowait(job)

    async def _run(self) -> None:
        while (job := await self._queue.get()) is not None:
            await asyncio.to_thread(self._safely, job)

    def _safely(self, job: _Job) -> None:
        try:
            job()
        except Exception as exc:
            log.warning("call %s: call log write failed: %s", self._ctx.call_id, exc)

    # -- events --------------------------------------------------------------------------------------
    def _on_started(self, ev: CallStarted) -> None:
        mode = self._w.settings.redact_phone
        meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "call_id": ev.call_id,
            "trace_id": None,
            "started_at": iso_utc(self._ctx.started_at),
            "ended_at": None,
            "duration_ms": None,
            "status": "in_progress",
            "caller": redact_phone_number(ev.caller, mode),
            "callee": redact_phone_number(ev.callee, mode),
            "direction": ev.direction,
            "telephony_provider": ev.carrier,
            "provider_mode": ev.provider_mode,
            "agent": dict(ev.agent or self._w.agent),
            "turns": 0,
            "cost": None,
            "latency": None,
            "error": None,
        }
        self._start = meta
        path = self._dir / "metadata.json"
        self._submit(lambda: write_json_atomic(path, meta))
        days = self._w.settings.log_retention_days
        if days > 0 and self._w._rand_byte() < 5:
            root = self._w.root
            self._submit(
                lambda: log.debug("retention sweep removed %d day dirs", sweep_retention(root, days))
            )

    def _on_turn(self, ev: TurnCompleted) -> None:
        turn = self._measurer.measure(ev)
        self._turns += 1
        row = {"schema_version": SCHEMA_VERSION, "ts": iso_utc(turn.timestamp), **turn.to_dict()}
        path = self._dir / "transcript.jsonl"
        self._submit(lambda: append_jsonl(path, row))
        if turn.agent_text == INTERRUPTED_TEXT or turn.latency.bargein_ms is not None:
            self._event(
                ev.at, "barge_in", {"turn_index": turn.turn_index, "bargein_ms": turn.latency.bargein_ms}
            )

    def _on_tool_called(self, ev: ToolCalled) -> None:
        self._event(ev.at, "tool_call", {"name": ev.name, "arguments": ev.arguments, "result": None})

    def _on_tool_result(self, ev: ToolResult) -> None:
        self._event(ev.at, "tool_result", {"name": ev.name, "arguments": ev.arguments, "result": ev.result})

    def _event(self, at: float, kind: str, data: dict[str, Any]) -> None:
        row = {"schema_version": SCHEMA_VERSION, "ts": iso_utc(at), "type": kind, "data": data}
        path = self._dir / "events.jsonl"
        self._submit(lambda: append_jsonl(path, row))

    def _on_ended(self, summary: CallSummary) -> None:
        # The call's end comes with its metrics in one event (published by the metrics collector), so
        # the end fields are written with them; nothing here suspends the session's end.
        path, ev, metrics, turns = self._dir / "metadata.json", summary.ended, summary.metrics, self._turns
        call_id = self._ctx.call_id

        def finish() -> None:
            write_json_atomic(path, {**_read_metadata(path, call_id), **_end_fields(ev, metrics, turns)})

        self._submit(finish)
        self._queue.put_nowait(None)


def _read_metadata(path: Path, call_id: str) -> dict[str, Any]:
    """The start file, or the minimal envelope when it is missing or unreadable (C.3)."""
    try:
        data = json.loads(path.read_text("utf-8"))
        if isinstance(data, dict):
            return data
    except (OSError, ValueError):
        pass
    return {"schema_version": SCHEMA_VERSION, "call_id": call_id, "started_at": None}


def _end_fields(ev: CallEnded, metrics: CallMetrics | None, turns: int) -> dict[str, Any]:
    duration = metrics.duration_seconds if metrics is not None else ev.duration_seconds
    end: dict[str, Any] = {
        "ended_at": iso_utc(ev.at),
        "duration_ms": round(duration * 1000, 1),
        "status": "failed" if ev.error_code else "completed",
        "turns": len(metrics.turns) if metrics is not None else turns,
        "error": ev.error_code,
    }
    if metrics is not None:
        end["cost"] = metrics.cost.to_dict()
        end["latency"] = {
            "p50_ms": metrics.latency_p50.total_ms,
            "p95_ms": metrics.latency_p95.total_ms,
            "p99_ms": metrics.latency_p99.total_ms,
            "avg": metrics.latency_avg.to_dict(),
            "p50": metrics.latency_p50.to_dict(),
            "p95": metrics.latency_p95.to_dict(),
            "p99": metrics.latency_p99.to_dict(),
        }
    return end


# -- readers for MetricsStore.hydrate (C.6) ----------------------------------------------------------
def load_deleted_ids(root: Path) -> set[str]:
    try:
        data = json.loads((root / DELETED_IDS_FILE).read_text("utf-8"))
        ids = data.get("deleted_call_ids", []) if isinstance(data, dict) else []
        return {str(i) for i in ids if isinstance(i, str)}
    except (OSError, ValueError):
        return set()


def save_deleted_ids(root: Path, ids: set[str]) -> None:
    write_json_atomic(root / DELETED_IDS_FILE, {"version": 1, "deleted_call_ids": sorted(ids)})


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with contextlib.suppress(OSError):
        for line in path.read_text("utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if isinstance(row, dict):
                    rows.append(row)
    return rows


def _transcript_from_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        ts = parse_iso(row.get("ts"))
        timestamp = ts if ts is not None else row.get("timestamp")
        for role, key in (("user", "user_text"), ("assistant", "agent_text")):
            text = row.get(key)
            if isinstance(text, str) and text and text != INTERRUPTED_TEXT:
                out.append(
                    {"role": role, "text": text, "timestamp": timestamp, "turnIndex": row.get("turn_index")}
                )
    return out


def _metrics_from_metadata(meta: dict[str, Any], call_id: str, turns: list[dict[str, Any]]) -> dict[str, Any]:
    raw_latency = meta.get("latency")
    latency: dict[str, Any] = raw_latency if isinstance(raw_latency, dict) else {}
    metrics: dict[str, Any] = {
        "call_id": call_id,
        "duration_seconds": round(float(meta.get("duration_ms") or 0) / 1000, 2),
        "turns": turns,
        "cost": meta.get("cost") if isinstance(meta.get("cost"), dict) else None,
        "provider_mode": meta.get("provider_mode", ""),
        "telephony_provider": meta.get("telephony_provider", ""),
    }
    if isinstance(latency.get("avg"), dict):
        for name in ("avg", "p50", "p95", "p99"):
            metrics[f"latency_{name}"] = latency.get(name)
    else:
        total = latency.get("p50_ms", latency.get("p95_ms"))
        metrics["latency_avg"] = {"total_ms": total} if total is not None else None
    return metrics


def read_call_record(call_path: Path) -> dict[str, Any] | None:
    """One call record (B.3 shape) from a call dir, or None when its metadata is unusable."""
    try:
        meta = json.loads((call_path / "metadata.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        log.debug("hydrate: skipping %s: %s", call_path, exc)
        return None
    if not isinstance(meta, dict) or (started := parse_iso(meta.get("started_at"))) is None:
        log.debug("hydrate: skipping %s: no usable started_at", call_path)
        return None
    call_id = str(meta.get("call_id") or call_path.name)
    rows = _read_jsonl(call_path / "transcript.jsonl")
    turns = [{k: v for k, v in r.items() if k not in ("schema_version", "ts")} for r in rows]
    transcript = meta.get("transcript")
    return {
        "call_id": call_id,
        "caller": meta.get("caller", ""),
        "callee": meta.get("callee", ""),
        "direction": meta.get("direction") or "inbound",
        "started_at": started,
        "ended_at": parse_iso(meta.get("ended_at")),
        "status": meta.get("status") or "completed",
        "transcript": transcript if isinstance(transcript, list) else _transcript_from_rows(rows),
        "turns": turns,
        "metrics": _metrics_from_metadata(meta, call_id, turns),
    }


def iter_call_dirs(root: Path) -> Iterator[Path]:
    """Every ``calls/Y/M/D/<call>`` dir under ``root`` (numeric date parts only)."""
    for _, year_dir in _numeric_dirs(root / "calls"):
        for _, month_dir in _numeric_dirs(year_dir):
            for _, day_dir in _numeric_dirs(month_dir):
                with contextlib.suppress(OSError):
                    yield from sorted(p for p in day_dir.iterdir() if p.is_dir())


__all__ = [
    "DELETED_IDS_FILE",
    "SCHEMA_VERSION",
    "CallLogWriter",
    "agent_snapshot",
    "append_jsonl",
    "call_dir",
    "iso_utc",
    "iter_call_dirs",
    "load_deleted_ids",
    "parse_iso",
    "read_call_record",
    "sanitize_call_id",
    "save_deleted_ids",
    "sweep_retention",
    "write_json_atomic",
]
