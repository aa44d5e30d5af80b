"""``MetricsStore``: the in-memory call history behind the dashboard and REST API (API.md B.2, B.3, C.6).

Completed calls live in a ring buffer (oldest dropped past ``max_calls``); live calls in a dict. Every
method is thread-safe (one lock; hydrate reads disk outside it). Records are plain JSON-able dicts and
every getter returns copies, so callers can never corrupt the store.

Live updates fan out to subscribers as ``{"type": <B.2 SSE type>, "data": {...}}`` items on per-subscriber
``asyncio.Queue``s (maxsize 100). A subscriber that falls 100 events behind is dropped: its queue is
emptied and gets ``None``, meaning "stream closed, reconnect and refetch".
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from getpatter._version import __version__
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import AgentUtterance, CallStarted, CallSummary, TurnCompleted, UserTranscript
from getpatter.dashboard.exports import (
    CSV_COLUMNS,
    call_cost,
    call_latency,
    calls_to_csv,
    calls_to_json,
)
from getpatter.dashboard.persistence import (
    iter_call_dirs,
    load_deleted_ids,
    read_call_record,
    save_deleted_ids,
)
from getpatter.metrics.aggregate import TurnMeasurer
from getpatter.metrics.model import CallMetrics, CostBreakdown, TurnMetrics

log = logging.getLogger("getpatter.dashboard")

SUBSCRIBER_QUEUE_SIZE = 100
TERMINAL_STATUSES = frozenset(
    {"completed", "no-answer", "busy", "failed", "canceled", "webhook_error", "timeout", "cancel"}
)
Record = dict[str, Any]
Item = dict[str, Any] | None


@dataclass(slots=True)
class _Subscriber:
    queue: asyncio.Queue[Item]
    loop: asyncio.AbstractEventLoop | None


def _zero_metrics(record: Record) -> Record:
    """The zero-cost shim for a call that ended without metrics (B.3)."""
    started, ended = record.get("started_at"), record.get("ended_at")
    duration = max(ended - started, 0.0) if started is not None and ended is not None else 0.0
    return {
        "call_id": record["call_id"],
        "duration_seconds": round(duration, 2),
        "turns": [],
        "cost": CostBreakdown().to_dict(),
    }


class MetricsStore:
    def __init__(self, max_calls: int = 500, *, log_root: str | Path | None = None) -> None:
        self.max_calls = max_calls
        self._lock = threading.RLock()
        self._completed: deque[Record] = deque(maxlen=max_calls)
        self._active: dict[str, Record] = {}
        self._media: set[str] = set()  # live calls whose media session started (they end with metrics)
        self._deleted: set[str] = set()
        self._subscribers: list[_Subscriber] = []
        self._log_root = Path(log_root) if log_root is not None else None
        self._save_lock = threading.Lock()
        #: Calls refused at the door since start (server at its limit), by reason.
        self._refused: dict[str, int] = {}
        #: Called with ``(type, data)`` of every change made here (not of :meth:`applying_remote` ones): a
        #: fleet shares them with the other instances' dashboards.
        self.taps: list[Callable[[str, dict[str, Any]], None]] = []
        self._remote = threading.local()

    # -- writes --------------------------------------------------------------------------------------
    def record_call_initiated(self, data: dict[str, Any]) -> None:
        """An outbound call was placed (not yet answered)."""
        record = self._upsert_active(data, status="initiated")
        self._publish(
            "call_initiated",
            {k: record.get(k) for k in ("call_id", "caller", "callee", "direction", "status")},
        )

    def record_call_refused(self, call_id: str, direction: str, reason: str) -> None:
        """A new call was refused because the server was at its limit: counted (the overview's
        "Refused" card), and told to live dashboards as ``call_refused``. A refused call is not a call
        record: it was never answered, and costs nothing."""
        with self._lock:
            self._refused[reason] = self._refused.get(reason, 0) + 1
        self._publish("call_refused", {"call_id": call_id, "direction": direction, "reason": reason})

    def record_call_start(self, data: dict[str, Any]) -> None:
        record = self._upsert_active(data, status="in-progress")
        with self._lock:
            self._media.add(record["call_id"])
        self._publish("call_start", {k: record.get(k) for k in ("call_id", "caller", "callee", "direction")})

    def _upsert_active(self, data: dict[str, Any], *, status: str) -> Record:
        call_id = str(data["call_id"])
        with self._lock:
            record = self._active.get(call_id)
            if record is None:
                record = {
                    "call_id": call_id,
                    "caller": "",
                    "callee": "",
                    "direction": "inbound",
                    "started_at": time.time(),
                    "ended_at": None,
                    "transcript": [],
                    "turns": [],
                    "metrics": None,
                }
                self._active[call_id] = record
            record.update({k: v for k, v in data.items() if k not in ("transcript", "turns")})
            record["status"] = status
            return copy.deepcopy(record)

    def record_turn(self, call_id: str, turn: TurnMetrics | dict[str, Any]) -> None:
        row = turn.to_dict() if isinstance(turn, TurnMetrics) else dict(turn)
        with self._lock:
            if (record := self._active.get(call_id)) is not None:
                record["turns"].append(row)
        self._publish("turn_complete", {"call_id": call_id, "turn": row})

    def record_transcript_line(
        self, call_id: str, role: str, text: str, timestamp: float | None = None
    ) -> None:
        with self._lock:
            record = self._active.get(call_id)
            index = len(record["turns"]) if record is not None else 0
            line = {"role": role, "text": text, "timestamp": timestamp or time.time(), "turnIndex": index}
            if record is not None:
                record["transcript"].append(line)
        self._publish("transcript_line", {"call_id": call_id, "turnIndex": index, "role": role, "text": text})

    def update_call_status(self, call_id: str, status: str, **extra: Any) -> Record | None:
        """Carrier status callback. A terminal status for a live call whose media never started
        (``initiated``, ``ringing``, even answered) completes it with zero-cost metrics and returns that
        final record (for the call log); otherwise the fields are just updated and ``None`` returned."""
        finished = None
        with self._lock:
            record = self._active.get(call_id)
            if record is None:
                record = next((r for r in self._completed if r["call_id"] == call_id), None)
            if record is not None:
                never_connected = call_id in self._active and call_id not in self._media
                record.update(extra)
                record["status"] = status
                if never_connected and status in TERMINAL_STATUSES:
                    record["ended_at"] = record.get("ended_at") or time.time()
                    record["metrics"] = _zero_metrics(record)
                    self._completed.append(self._active.pop(call_id))
                    finished = copy.deepcopy(record)
        self._publish("call_status", {"call_id": call_id, "status": status, **extra})
        return finished

    def record_call_end(
        self, data: dict[str, Any], metrics: CallMetrics | dict[str, Any] | None = None
    ) -> None:
        """Move a call to the completed ring buffer (or update it there if a status callback beat us)."""
        call_id = str(data["call_id"])
        metrics_dict = metrics.to_dict() if isinstance(metrics, CallMetrics) else metrics
        with self._lock:
            active = self._active.pop(call_id, None)
            self._media.discard(call_id)
            existing = next((r for r in self._completed if r["call_id"] == call_id), None)
            record = active or existing or {"call_id": call_id, "direction": "inbound", "started_at": None}
            record.setdefault("transcript", [])
            record.setdefault("turns", [])
            record.update({k: v for k, v in data.items() if k not in ("transcript", "metrics")})
            record.setdefault("ended_at", None)
            record["ended_at"] = record["ended_at"] or time.time()
            if not record.get("transcript") and data.get("transcript"):
                record["transcript"] = [dict(t) for t in data["transcript"]]
            if metrics_dict is not None and metrics_dict.get("turns"):
                record["turns"] = list(metrics_dict["turns"])
            record["status"] = data.get("status") or "completed"
            record["metrics"] = metrics_dict if metrics_dict is not None else _zero_metrics(record)
            if existing is None:
                self._completed.append(record)
            elif record is not existing:  # a reused id: the live call replaces the stale record
                slot = next(i for i, r in enumerate(self._completed) if r is existing)
                self._completed[slot] = record
            published = copy.deepcopy(record["metrics"])
        self._publish("call_end", {"call_id": call_id, "metrics": published})

    def delete_calls(self, call_ids: Iterable[str]) -> list[str]:
        """Soft delete: hide the known ids from every read and persist the set next to the call logs."""
        with self._lock:
            known = {r["call_id"] for r in self._completed} | set(self._active)
            newly = [
                i for i in dict.fromkeys(str(c) for c in call_ids) if i in known and i not in self._deleted
            ]
            self._deleted.update(newly)
        if newly:
            self._persist_deleted()
            self._publish("calls_deleted", {"call_ids": newly})
        return newly

    def _persist_deleted(self) -> None:
        root = self._log_root
        if root is None:
            return

        def save() -> None:
            # Snapshot and write under one lock: concurrent saves land in order, newest set last.
            with self._save_lock:
                with self._lock:
                    ids = set(self._deleted)
                try:
                    save_deleted_ids(root, ids)
                except OSError as exc:
                    log.warning("could not save deleted call ids to %s: %s", root, exc)

        try:
            asyncio.get_running_loop().run_in_executor(None, save)
        except RuntimeError:
            save()

    # -- reads ---------------------------------------------------------------------------------------
    def _visible(self) -> list[Record]:
        return [r for r in self._completed if r["call_id"] not in self._deleted]

    def get_calls(self, limit: int = 50, offset: int = 0) -> list[Record]:
        """Completed calls, newest first; ``limit`` clamped to 0-1000."""
        limit, offset = max(0, min(int(limit), 1000)), max(0, int(offset))
        with self._lock:
            newest = self._visible()[::-1]
            return copy.deepcopy(newest[offset : offset + limit])

    def get_call(self, call_id: str) -> Record | None:
        """A completed call, else the live record (for live transcript polling); None if unknown/deleted."""
        with self._lock:
            if call_id in self._deleted:
                return None
            record = next((r for r in reversed(self._completed) if r["call_id"] == call_id), None)
            record = record or self._active.get(call_id)
            return copy.deepcopy(record) if record is not None else None

    def get_active(self, call_id: str) -> Record | None:
        with self._lock:
            record = self._active.get(call_id)
            return copy.deepcopy(record) if record is not None and call_id not in self._deleted else None

    def get_active_calls(self) -> list[Record]:
        with self._lock:
            return copy.deepcopy([r for r in self._active.values() if r["call_id"] not in self._deleted])

    def get_calls_in_range(self, from_ts: float | None = None, to_ts: float | None = None) -> list[Record]:
        """Completed calls with ``from_ts <= started_at <= to_ts`` (either bound optional), newest first."""
        with self._lock:
            calls = [
                r
                for r in self._visible()[::-1]
                if (from_ts is None or (r.get("started_at") or 0) >= from_ts)
                and (to_ts is None or (r.get("started_at") or 0) <= to_ts)
            ]
            return copy.deepcopy(calls)

    @property
    def call_count(self) -> int:
        """Visible completed calls."""
        with self._lock:
            return len(self._visible())

    def get_aggregates(self) -> dict[str, Any]:
        with self._lock:
            calls = self._visible()
            active = sum(1 for i in self._active if i not in self._deleted)
            parts = {
                k: sum(float(call_cost(r).get(k) or 0.0) for r in calls)
                for k in ("stt", "tts", "llm", "telephony")
            }
            total = sum(float(call_cost(r).get("total") or 0.0) for r in calls)
            durations = [float((r.get("metrics") or {}).get("duration_seconds") or 0.0) for r in calls]
            latencies = [v for r in calls if (v := call_latency(r)) > 0]
            refused = dict(self._refused)
        return {
            "total_calls": len(calls),
            "total_cost": round(total, 6),
            "avg_duration": round(sum(durations) / len(durations), 2) if durations else 0.0,
            "avg_latency_ms": round(sum(latencies) / len(latencies), 1) if latencies else 0.0,
            "cost_breakdown": {k: round(v, 6) for k, v in parts.items()},
            "active_calls": active,
            "refused_calls": sum(refused.values()),
            "refused_by_reason": refused,
            "sdk_version": __version__,
        }

    # -- live subscribers ----------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[Item]:
        """A queue of ``{"type", "data"}`` items; ``None`` = closed (overflow). Call from the loop that
        will read it."""
        queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_SIZE)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._subscribers.append(_Subscriber(queue, loop))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Item]) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s.queue is not queue]

    @contextlib.contextmanager
    def applying_remote(self) -> Iterator[None]:
        """Changes made inside come from another instance: shown and streamed here, not tapped again."""
        self._remote.on = True
        try:
            yield
        finally:
            self._remote.on = False

    def merge_completed(self, records: Iterable[Record]) -> int:
        """Add finished calls known elsewhere (another instance's history); returns how many were new."""
        with self._lock:
            known = {r["call_id"] for r in self._completed} | set(self._active)
            new = {r["call_id"]: copy.deepcopy(r) for r in records if r.get("call_id") not in known}
            if new:
                merged = sorted([*self._completed, *new.values()], key=lambda r: r.get("started_at") or 0.0)
                self._completed = deque(merged, maxlen=self.max_calls)
        return len(new)

    def merge_active(self, records: Iterable[Record]) -> int:
        """Add live calls another instance runs (their snapshots); returns how many were new."""
        added = 0
        with self._lock:
            known = {r["call_id"] for r in self._completed} | set(self._active)
            for record in records:
                call_id = str(record.get("call_id") or "")
                if not call_id or call_id in known:
                    continue
                snapshot = copy.deepcopy(record)
                snapshot.setdefault("transcript", [])
                snapshot.setdefault("turns", [])
                self._active[call_id] = snapshot
                if snapshot.get("status") == "in-progress":
                    self._media.add(call_id)
                added += 1
        return added

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        if self.taps and not getattr(self._remote, "on", False):
            for tap in list(self.taps):
                try:
                    tap(kind, data)
                except Exception:
                    log.exception("dashboard tap failed on %s", kind)
        with self._lock:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        item = {"type": kind, "data": data}
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for sub in subscribers:
            if sub.loop is None or sub.loop is current:
                self._deliver(sub, item)
            elif not sub.loop.is_closed():
                sub.loop.call_soon_threadsafe(self._deliver, sub, item)

    def _deliver(self, sub: _Subscriber, item: Item) -> None:
        try:
            sub.queue.put_nowait(copy.deepcopy(item))
        except asyncio.QueueFull:
            self.unsubscribe(sub.queue)
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait(None)
            log.info("dashboard subscriber fell %d events behind; closed it", SUBSCRIBER_QUEUE_SIZE)

    # -- disk ----------------------------------------------------------------------------------------
    def hydrate(self, log_root: str | Path) -> int:
        """Load completed calls from the call logs under ``log_root`` (C.6); returns how many were added.

        Idempotent (known ids are skipped); unreadable calls are skipped with a debug log; never raises.
        Remembers ``log_root`` so later soft deletes are saved there.
        """
        root = Path(log_root)
        try:
            deleted = load_deleted_ids(root)
            found = [rec for path in iter_call_dirs(root) if (rec := read_call_record(path)) is not None]
        except Exception:
            log.debug("hydrate of %s failed", root, exc_info=True)
            return 0
        with self._lock:
            self._log_root = root
            self._deleted |= deleted
            known = {r["call_id"] for r in self._completed} | set(self._active)
            new: dict[str, Record] = {}
            for rec in found:
                if rec["call_id"] not in known:
                    new.setdefault(rec["call_id"], rec)
            merged = sorted([*self._completed, *new.values()], key=lambda r: r.get("started_at") or 0.0)
            self._completed = deque(merged, maxlen=self.max_calls)
        return len(new)

    async def hydrate_async(self, log_root: str | Path) -> int:
        return await asyncio.to_thread(self.hydrate, log_root)

    # -- the call observer ---------------------------------------------------------------------------
    def store_observer(self, bus: EventBus, ctx: CallContext) -> None:
        """Feed this store from one call's events (an ``Observer`` for ``CallRuntime.observers``). The
        call is completed by its ``CallSummary``, so a ``MetricsCollector`` must ride on the same bus
        (``Patter`` attaches one to every call)."""
        measurer = TurnMeasurer()

        def started(ev: CallStarted) -> None:
            self.record_call_start(
                {
                    "call_id": ev.call_id,
                    "caller": ev.caller,
                    "callee": ev.callee,
                    "direction": ev.direction,
                    "started_at": ev.at,
                    "telephony_provider": ev.carrier,
                    "provider_mode": ev.provider_mode,
                }
            )

        def finish(summary: CallSummary) -> None:
            ev = summary.ended
            data = {
                "call_id": ev.call_id,
                "caller": ctx.caller,
                "callee": ctx.callee,
                "direction": ctx.direction,
                "ended_at": ev.at,
                "transcript": list(ev.transcript),
                "status": "failed" if ev.error_code else "completed",
            }
            self.record_call_end(data, summary.metrics)

        bus.on(CallStarted, started)
        bus.on(UserTranscript, lambda ev: self.record_transcript_line(ev.call_id, "user", ev.text, ev.at))
        bus.on(
            AgentUtterance,
            lambda ev: (
                self.record_transcript_line(ev.call_id, "assistant", ev.text, ev.at) if ev.text else None
            ),
        )
        bus.on(TurnCompleted, lambda ev: self.record_turn(ev.call_id, measurer.measure(ev)))
        bus.on(CallSummary, finish)


__all__ = ["CSV_COLUMNS", "MetricsStore", "calls_to_csv", "calls_to_json"]
