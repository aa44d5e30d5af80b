"""MetricsStore: ring buffer, reads, aggregates, ranges, soft delete, live subscribers, hydrate, exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from pathlib import Path
from typing import Any

from getpatter._version import __version__
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import (
    AgentUtterance,
    CallEnded,
    CallStarted,
    TurnCompleted,
    TurnTimings,
    UserTranscript,
)
from getpatter.dashboard.persistence import DELETED_IDS_FILE, save_deleted_ids, write_json_atomic
from getpatter.dashboard.store import CSV_COLUMNS, MetricsStore, calls_to_csv, calls_to_json
from getpatter.metrics.collector import MetricsCollector


def _metrics(
    total: float, stt: float = 0.0, latency: float = 0.0, agent_ms: float | None = None
) -> dict[str, Any]:
    return {
        "duration_seconds": 10.0,
        "cost": {"stt": stt, "tts": 0.0, "llm": 0.0, "telephony": total - stt, "total": total},
        "latency_avg": {"total_ms": latency, "agent_response_ms": agent_ms},
        "provider_mode": "pipeline",
    }


def _kind(item: dict[str, Any] | None) -> str:
    assert item is not None
    return str(item["type"])


def _data(item: dict[str, Any] | None) -> dict[str, Any]:
    assert item is not None
    return dict(item["data"])


def _complete(store: MetricsStore, call_id: str, started: float, **metrics: Any) -> None:
    store.record_call_start({"call_id": call_id, "caller": "+1555", "callee": "+1666", "started_at": started})
    store.record_call_end(
        {"call_id": call_id, "ended_at": started + 10}, _metrics(**metrics) if metrics else None
    )


def test_ring_buffer_keeps_the_newest_and_reads_newest_first() -> None:
    store = MetricsStore(max_calls=3)
    for i in range(5):
        _complete(store, f"c{i}", 100.0 + i, total=0.01)
    assert [c["call_id"] for c in store.get_calls()] == ["c4", "c3", "c2"]
    assert [c["call_id"] for c in store.get_calls(limit=1, offset=1)] == ["c3"]
    assert store.get_calls(limit=-5) == [] and len(store.get_calls(limit=10**6)) == 3
    assert store.call_count == 3 and store.get_call("c0") is None


def test_live_record_accumulates_then_completes() -> None:
    store = MetricsStore()
    store.record_call_start({"call_id": "a", "caller": "+1", "callee": "+2", "direction": "outbound"})
    store.record_transcript_line("a", "assistant", "Hello", 1.0)
    store.record_turn("a", {"turn_index": 0, "agent_text": "Hello"})
    store.record_transcript_line("a", "user", "Hi", 2.0)
    live = store.get_active("a")
    assert live is not None and live["status"] == "in-progress" and live["direction"] == "outbound"
    assert [(t["role"], t["turnIndex"]) for t in live["transcript"]] == [("assistant", 0), ("user", 1)]
    assert store.get_call("a") == live and len(store.get_active_calls()) == 1
    live["transcript"].clear()  # copies: the store is untouched
    assert len(store.get_call("a")["transcript"]) == 2  # type: ignore[index]
    store.record_call_end(
        {"call_id": "a", "ended_at": 50.0, "transcript": [{"role": "x", "text": "ignored"}]}
    )
    done = store.get_call("a")
    assert done is not None and done["status"] == "completed" and len(done["transcript"]) == 2
    assert done["metrics"]["cost"]["total"] == 0.0  # the zero-cost shim
    assert store.get_active_calls() == [] and store.get_active("a") is None


def test_no_answer_status_completes_an_initiated_call_with_a_shim() -> None:
    store = MetricsStore()
    store.record_call_initiated(
        {"call_id": "o", "caller": "+1", "callee": "+2", "direction": "outbound", "started_at": 100.0}
    )
    assert store.get_active("o")["status"] == "initiated"  # type: ignore[index]
    store.update_call_status("o", "no-answer", duration_seconds=0)
    call = store.get_call("o")
    assert call is not None and call["status"] == "no-answer" and call["metrics"]["cost"]["total"] == 0.0
    assert call["metrics"]["duration_seconds"] >= 0 and store.get_active_calls() == []
    store.record_call_start({"call_id": "p"})
    store.update_call_status("p", "completed", duration_seconds=12)  # media call: its own end comes later
    assert store.get_active("p")["duration_seconds"] == 12  # type: ignore[index]


def test_aggregates_and_ranges() -> None:
    store = MetricsStore()
    _complete(store, "a", 100.0, total=0.10, stt=0.04, latency=500.0, agent_ms=300.0)
    _complete(store, "b", 200.0, total=0.20, stt=0.01, latency=700.0)
    _complete(store, "c", 300.0)  # no metrics: shim, zero latency (not averaged)
    store.record_call_start({"call_id": "live"})
    agg = store.get_aggregates()
    assert agg["total_calls"] == 3 and agg["active_calls"] == 1 and agg["sdk_version"] == __version__
    assert agg["total_cost"] == 0.3 and agg["cost_breakdown"]["stt"] == 0.05
    assert agg["cost_breakdown"]["telephony"] == 0.25
    assert agg["avg_latency_ms"] == 500.0  # prefers agent_response_ms (300), else total_ms (700)
    assert agg["avg_duration"] == round((10 + 10 + 10) / 3, 2)
    assert [c["call_id"] for c in store.get_calls_in_range(150.0, 300.0)] == ["c", "b"]
    assert [c["call_id"] for c in store.get_calls_in_range(to_ts=100.0)] == ["a"]


def test_soft_delete_hides_everywhere_and_persists(tmp_path: Path) -> None:
    store = MetricsStore(log_root=tmp_path)
    _complete(store, "a", 100.0, total=0.1)
    _complete(store, "b", 200.0, total=0.2)
    assert store.delete_calls(["a", "nope", "a"]) == ["a"]
    assert store.delete_calls(["a"]) == []
    assert [c["call_id"] for c in store.get_calls()] == ["b"] and store.get_call("a") is None
    assert store.get_aggregates()["total_calls"] == 1 and store.get_calls_in_range() == store.get_calls()
    saved = json.loads((tmp_path / DELETED_IDS_FILE).read_text())
    assert saved == {"version": 1, "deleted_call_ids": ["a"]}


async def test_subscribers_get_events_and_a_slow_one_is_closed() -> None:
    store = MetricsStore()
    fast, slow = store.subscribe(), store.subscribe()
    store.record_call_start({"call_id": "a", "caller": "+1", "callee": "+2"})
    assert await fast.get() == {
        "type": "call_start",
        "data": {"call_id": "a", "caller": "+1", "callee": "+2", "direction": "inbound"},
    }
    for i in range(100):
        store.record_transcript_line("a", "user", f"line {i}")
        assert _kind(await fast.get()) == "transcript_line"
    assert slow.get_nowait() is None  # overflowed: emptied and closed
    store.record_call_end({"call_id": "a"})
    assert _kind(await fast.get()) == "call_end" and slow.empty()
    store.unsubscribe(fast)
    store.record_call_start({"call_id": "b"})
    assert fast.empty()


async def test_events_published_from_another_thread_reach_the_loop() -> None:
    store = MetricsStore()
    queue = store.subscribe()
    thread = threading.Thread(target=store.record_call_start, args=({"call_id": "t"},))
    thread.start()
    thread.join()
    assert _data(await asyncio.wait_for(queue.get(), 2))["call_id"] == "t"


async def test_store_observer_follows_a_call_and_publishes_b2_events() -> None:
    store = MetricsStore()
    queue = store.subscribe()
    bus = EventBus()
    ctx = CallContext(call_id="CA1", caller="+1", callee="+2", direction="inbound", carrier="twilio")
    store.store_observer(bus, ctx)  # attached before the collector: order must not matter
    MetricsCollector().observer(bus, ctx)
    bus.emit(
        CallStarted(
            call_id="CA1",
            caller="+1",
            callee="+2",
            direction="inbound",
            carrier="twilio",
            provider_mode="pipeline",
        )
    )
    bus.emit(UserTranscript(call_id="CA1", text="hi"))
    bus.emit(AgentUtterance(call_id="CA1", text="hello"))
    bus.emit(
        TurnCompleted(
            call_id="CA1",
            turn_index=0,
            user_text="hi",
            agent_text="hello",
            interrupted=False,
            timings=TurnTimings(speech_ended=1.0, first_audio_sent=1.4),
        )
    )
    bus.emit(
        CallEnded(
            call_id="CA1",
            reason="stopped",
            duration_seconds=3.0,
            transcript=({"role": "user", "text": "hi"},),
        )
    )
    # The end is recorded from the collector's CallSummary as CallEnded is emitted, not a loop later.
    done = store.get_call("CA1")
    assert done is not None and done["status"] == "completed" and done["metrics"]["duration_seconds"] == 3.0
    assert store.get_active_calls() == []
    types = [_kind(await asyncio.wait_for(queue.get(), 2)) for _ in range(5)]
    assert types == ["call_start", "transcript_line", "transcript_line", "turn_complete", "call_end"]
    call = store.get_call("CA1")
    assert call is not None and call["metrics"]["call_id"] == "CA1"
    assert call["metrics"]["latency_avg"]["total_ms"] == 400.0 and call["turns"][0]["agent_text"] == "hello"
    assert call["telephony_provider"] == "twilio" and call["provider_mode"] == "pipeline"


def _write_call(
    root: Path, day: str, name: str, meta: dict[str, Any] | str, rows: list[Any] | None = None
) -> Path:
    path = root / "calls" / day / name
    path.mkdir(parents=True)
    if isinstance(meta, str):
        (path / "metadata.json").write_text(meta)
    else:
        write_json_atomic(path / "metadata.json", meta)
    if rows is not None:
        text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
        (path / "transcript.jsonl").write_text(text)
    return path


def test_hydrate_rebuilds_records_is_idempotent_and_skips_garbage(tmp_path: Path) -> None:
    full = {
        "schema_version": "1.0",
        "call_id": "CA-new",
        "started_at": "2026-04-23T18:02:12.413Z",
        "ended_at": "2026-04-23T18:03:12.413Z",
        "duration_ms": 60000.0,
        "status": "completed",
        "caller": "***1111",
        "callee": "***2222",
        "telephony_provider": "twilio",
        "provider_mode": "pipeline",
        "cost": {"stt": 0.01, "tts": 0.02, "llm": 0.0, "telephony": 0.0085, "total": 0.0385},
        "latency": {
            "p50_ms": 400.0,
            "p95_ms": 900.0,
            "p99_ms": 990.0,
            "avg": {"total_ms": 450.0},
            "p50": {"total_ms": 400.0},
            "p95": {"total_ms": 900.0},
            "p99": {"total_ms": 990.0},
        },
        "future_field": {"tolerated": True},
    }
    rows = [
        {"ts": "2026-04-23T18:02:13.000Z", "turn_index": 0, "user_text": "", "agent_text": "Hello"},
        {
            "ts": "2026-04-23T18:02:20.000Z",
            "turn_index": 1,
            "user_text": "Stop",
            "agent_text": "[interrupted]",
        },
        '{"truncated": ',
    ]
    _write_call(tmp_path, "2026/04/23", "CA-new", full, rows)
    old = {"call_id": "CA-old", "started_at": "2026-04-22T10:00:00Z", "latency": {"p50_ms": 300.0}}
    _write_call(tmp_path, "2026/04/22", "dir-name", {**old, "call_id": None})
    _write_call(tmp_path, "2026/04/22", "broken", "{not json")
    _write_call(tmp_path, "2026/04/22", "no-start", {"call_id": "x", "started_at": None})
    _write_call(tmp_path, "2026/04/22", "bad-start", {"call_id": "y", "started_at": "yesterday"})
    _write_call(tmp_path, "2026/04/22", "list", "[1, 2]")
    (tmp_path / "calls" / "2026" / "04" / "22" / "stray.txt").write_text("x")
    _write_call(tmp_path, "notes/xx/yy", "CA-ignored", {"call_id": "z", "started_at": "2026-01-01T00:00:00Z"})
    (tmp_path / "calls" / "2026" / "13").mkdir()  # not a real month: nothing inside, no crash

    store = MetricsStore()
    assert store.hydrate(tmp_path) == 2
    assert store.hydrate(tmp_path) == 0
    assert [c["call_id"] for c in store.get_calls()] == ["CA-new", "dir-name"]  # newest first
    new = store.get_call("CA-new")
    assert new is not None and new["caller"] == "***1111" and new["direction"] == "inbound"
    assert new["started_at"] == 1776967332.413 and new["status"] == "completed"
    assert new["metrics"]["duration_seconds"] == 60.0 and new["metrics"]["cost"]["total"] == 0.0385
    assert (
        new["metrics"]["latency_p95"] == {"total_ms": 900.0}
        and new["metrics"]["telephony_provider"] == "twilio"
    )
    assert [(t["role"], t["text"]) for t in new["transcript"]] == [("assistant", "Hello"), ("user", "Stop")]
    assert new["transcript"][0]["timestamp"] == 1776967333.0 and len(new["turns"]) == 2
    older = store.get_call("dir-name")
    assert older is not None and older["metrics"]["latency_avg"] == {"total_ms": 300.0}
    assert MetricsStore().hydrate(tmp_path / "does-not-exist") == 0


async def test_hydrate_keeps_deleted_hidden_and_live_calls_win(tmp_path: Path) -> None:
    for name, started in (("a", "2026-04-22T10:00:00Z"), ("b", "2026-04-22T11:00:00Z")):
        _write_call(tmp_path, "2026/04/22", name, {"call_id": name, "started_at": started})
    save_deleted_ids(tmp_path, {"a"})
    store = MetricsStore()
    store.record_call_start({"call_id": "b"})
    assert await store.hydrate_async(tmp_path) == 1  # "a" loaded (hidden); live "b" is not replaced
    assert store.get_calls() == [] and store.get_call("a") is None
    _complete(store, "c", 2e9, total=0.1)
    assert store.delete_calls(["c"]) == ["c"]  # remembered root: persisted there
    for _ in range(100):
        if "c" in json.loads((tmp_path / DELETED_IDS_FILE).read_text())["deleted_call_ids"]:
            break
        await asyncio.sleep(0.01)
    assert json.loads((tmp_path / DELETED_IDS_FILE).read_text())["deleted_call_ids"] == ["a", "c"]


def test_exports() -> None:
    store = MetricsStore()
    _complete(store, "a", 1776967332.0, total=0.5, stt=0.1, latency=420.0)
    store.record_call_start(
        {"call_id": "f", "caller": "=HYPERLINK(1)", "callee": "+15550002222", "started_at": 1.0}
    )
    store.record_call_end({"call_id": "f", "ended_at": 2.0})
    calls = store.get_calls()
    rows = list(csv.reader(io.StringIO(calls_to_csv(calls))))
    assert tuple(rows[0]) == CSV_COLUMNS
    by_id = {r[0]: dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:]}
    a = by_id["a"]
    assert (
        a["started_at"] == "2026-04-23T18:02:12.000Z" and a["cost_total"] == "0.5" and a["cost_stt"] == "0.1"
    )
    assert a["avg_latency_ms"] == "420.0" and a["turns_count"] == "0" and a["provider_mode"] == "pipeline"
    assert a["caller"] == "+1555"  # phone numbers are not mangled
    assert by_id["f"]["caller"] == "'=HYPERLINK(1)" and by_id["f"]["duration_s"] == "1.0"
    assert json.loads(calls_to_json(calls)) == calls


async def test_refused_calls_are_counted_by_reason_and_told_live_without_becoming_call_records() -> None:
    store = MetricsStore()
    queue = store.subscribe()
    store.record_call_refused("CA1", "inbound", "capacity")
    store.record_call_refused("CA2", "inbound", "loop_lag")
    store.record_call_refused("CA3", "inbound", "capacity")
    agg = store.get_aggregates()
    assert agg["refused_calls"] == 3
    assert agg["refused_by_reason"] == {"capacity": 2, "loop_lag": 1}
    assert agg["total_calls"] == 0 and agg["active_calls"] == 0 and store.get_calls() == []
    assert await queue.get() == {
        "type": "call_refused",
        "data": {"call_id": "CA1", "direction": "inbound", "reason": "capacity"},
    }
