"""Call logs on disk: layout, schemas, redaction, atomic rewrite, retention, sanitising, failure modes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import (
    CallEnded,
    CallStarted,
    ErrorOccurred,
    ToolCalled,
    ToolResult,
    TurnCompleted,
    TurnTimings,
)
from getpatter.dashboard.persistence import (
    CallLogWriter,
    agent_snapshot,
    call_dir,
    iso_utc,
    sanitize_call_id,
    sweep_retention,
    write_json_atomic,
)
from getpatter.metrics.collector import MetricsCollector
from getpatter.settings import Settings

START = datetime(2026, 4, 23, 23, 59, 59, 500000, tzinfo=UTC).timestamp()


def _writer(root: Path, settings: Settings | None = None, **kwargs: Any) -> CallLogWriter:
    """A writer whose ~2% retention sweep never fires unless a test asks (START may be > 30 days ago)."""
    kwargs.setdefault("rand_byte", lambda: 255)
    return CallLogWriter(root, settings, **kwargs)


async def _run_call(writer: CallLogWriter, *, call_id: str = "CA42", collector: bool = True) -> Path:
    """One call's events, as the session emits them; returns the call dir."""
    bus = EventBus()
    ctx = CallContext(
        call_id=call_id,
        caller="+15550001111",
        callee="+15550002222",
        direction="inbound",
        carrier="twilio",
        started_at=START,
    )
    if collector:
        MetricsCollector().observer(bus, ctx)
    writer.observer(bus, ctx)
    bus.emit(
        CallStarted(
            call_id=call_id,
            caller=ctx.caller,
            callee=ctx.callee,
            direction="inbound",
            carrier="twilio",
            provider_mode="pipeline",
            at=START,
        )
    )
    timings = TurnTimings(speech_ended=1.0, transcript_final=1.1, first_audio_sent=1.5)
    bus.emit(
        TurnCompleted(
            call_id=call_id,
            turn_index=0,
            user_text="Hi ☎",
            agent_text="Hello!",
            interrupted=False,
            timings=timings,
            at=START + 5,
        )
    )
    bus.emit(ToolCalled(call_id=call_id, name="lookup", arguments={"q": 1}, at=START + 6))
    bus.emit(ToolResult(call_id=call_id, name="lookup", arguments={"q": 1}, result="42", at=START + 7))
    cut = TurnTimings(barge_in_detected=3.0, playback_stopped=3.05)
    bus.emit(
        TurnCompleted(
            call_id=call_id,
            turn_index=1,
            user_text="wait",
            agent_text="[interrupted]",
            interrupted=True,
            timings=cut,
            at=START + 8,
        )
    )
    bus.emit(ErrorOccurred(call_id=call_id, error_code="stt", message="secret detail", at=START + 9))
    bus.emit(CallEnded(call_id=call_id, reason="stopped", duration_seconds=12.3456, at=START + 12.5))
    await bus.drain()
    meta_path = call_dir(writer.root, call_id, START) / "metadata.json"
    for _ in range(200):  # the writer's queue empties off the loop; wait for the final metadata
        if meta_path.exists() and json.loads(meta_path.read_text()).get("ended_at") is not None:
            return meta_path.parent
        await asyncio.sleep(0.01)
    raise AssertionError("metadata.json was never finalised")


async def test_layout_and_every_schema(tmp_path: Path) -> None:
    agent = {"provider": "pipeline", "model": "gpt-4o-mini", "voice": "alloy", "language": "en"}
    call = await _run_call(_writer(tmp_path, Settings(), agent=agent))
    assert call == tmp_path / "calls" / "2026" / "04" / "23" / "CA42"  # the UTC start day
    meta = json.loads((call / "metadata.json").read_text("utf-8"))
    assert meta["schema_version"] == "1.0" and meta["call_id"] == "CA42" and meta["trace_id"] is None
    assert meta["started_at"] == "2026-04-23T23:59:59.500Z"
    assert meta["ended_at"] == "2026-04-24T00:00:12.000Z"
    assert meta["duration_ms"] == 12350.0  # metrics.duration_seconds (2 dp) * 1000
    assert meta["status"] == "completed" and meta["error"] is None and meta["turns"] == 2
    assert meta["caller"] == "***1111" and meta["callee"] == "***2222"
    assert meta["direction"] == "inbound" and meta["telephony_provider"] == "twilio"
    assert meta["provider_mode"] == "pipeline" and meta["agent"] == agent
    assert set(meta["cost"]) == {"stt", "tts", "llm", "telephony", "total", "llm_cached_savings"}
    assert meta["latency"]["p50_ms"] == 500.0 and meta["latency"]["avg"]["total_ms"] == 500.0
    assert set(meta["latency"]) == {"p50_ms", "p95_ms", "p99_ms", "avg", "p50", "p95", "p99"}

    rows = [json.loads(line) for line in (call / "transcript.jsonl").read_text("utf-8").splitlines()]
    assert [r["turn_index"] for r in rows] == [0, 1]
    assert rows[0]["user_text"] == "Hi ☎" and rows[0]["agent_text"] == "Hello!"  # UTF-8, not escaped
    assert "Hi ☎" in (call / "transcript.jsonl").read_text("utf-8")
    assert rows[0]["ts"] == "2026-04-24T00:00:04.500Z" and rows[0]["timestamp"] == START + 5
    assert rows[0]["latency"]["total_ms"] == 500.0 and rows[0]["tts_characters"] == 6
    assert rows[1]["agent_text"] == "[interrupted]" and rows[1]["tts_characters"] == 0

    events = [json.loads(line) for line in (call / "events.jsonl").read_text().splitlines()]
    assert [(e["type"], e["data"]) for e in events] == [
        ("tool_call", {"name": "lookup", "arguments": {"q": 1}, "result": None}),
        ("tool_result", {"name": "lookup", "arguments": {"q": 1}, "result": "42"}),
        ("barge_in", {"turn_index": 1, "bargein_ms": 50.0}),
        ("error", {"error_code": "stt"}),  # the code, never the message
    ]
    assert all(e["schema_version"] == "1.0" and e["ts"].endswith("Z") for e in events)
    assert [p.name for p in call.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(
    ("mode", "caller"),
    [("mask", "***1111"), ("full", "+15550001111"), ("hash_only", "sha256:")],
)
async def test_redaction_applies_to_metadata_only(tmp_path: Path, mode: Any, caller: str) -> None:
    call = await _run_call(_writer(tmp_path, Settings(redact_phone=mode)))
    meta = json.loads((call / "metadata.json").read_text())
    assert meta["caller"].startswith(caller)
    if mode == "hash_only":
        assert len(meta["caller"]) == len("sha256:") + 16 and "1111" not in meta["caller"]


async def test_end_without_start_file_writes_minimal_envelope(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    bus = EventBus()
    ctx = CallContext(
        call_id="CA9", caller="", callee="", direction="inbound", carrier="twilio", started_at=START
    )
    MetricsCollector().observer(bus, ctx)  # publishes the CallSummary the writer ends the call with
    writer.observer(bus, ctx)
    bus.emit(CallEnded(call_id="CA9", reason="error", error_code="internal", duration_seconds=1.0))
    path = tmp_path / "calls/2026/04/23/CA9/metadata.json"
    for _ in range(200):
        if path.exists():
            break
        await asyncio.sleep(0.01)
    meta = json.loads(path.read_text())
    assert meta["started_at"] is None and meta["schema_version"] == "1.0" and meta["call_id"] == "CA9"
    assert meta["status"] == "failed" and meta["error"] == "internal" and meta["duration_ms"] == 1000.0
    assert meta["cost"]["telephony"] == 0.0085 and meta["cost"]["stt"] == 0.0  # Twilio: the started minute


def test_atomic_rewrite_keeps_old_file_when_the_write_fails(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "metadata.json"
    write_json_atomic(path, {"v": 1})

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)  # the module calls os.fsync
    with pytest.raises(OSError):
        write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["metadata.json"]  # the temp file was cleaned up


async def test_write_failures_warn_and_never_reach_the_call(tmp_path: Path, caplog: Any) -> None:
    writer = _writer(tmp_path)
    (tmp_path / "calls" / "2026").write_text("not a dir")  # every write under it fails
    with caplog.at_level(logging.WARNING, logger="getpatter.persistence"):
        bus = EventBus()
        ctx = CallContext(
            call_id="X", caller="", callee="", direction="inbound", carrier="t", started_at=START
        )
        MetricsCollector().observer(bus, ctx)
        writer.observer(bus, ctx)
        bus.emit(
            CallStarted(
                call_id="X", caller="", callee="", direction="inbound", carrier="t", provider_mode="p"
            )
        )
        bus.emit(CallEnded(call_id="X", reason="stopped"))
        for _ in range(200):
            if sum("call log write failed" in r.message for r in caplog.records) >= 2:
                break
            await asyncio.sleep(0.01)
    assert sum("call log write failed" in r.message for r in caplog.records) >= 2


def test_root_that_cannot_be_created_disables_logging(tmp_path: Path, caplog: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="getpatter.persistence"):
        writer = _writer(blocker / "logs")
    assert writer.enabled is False and "call logs disabled" in caplog.text
    bus = EventBus()
    writer.observer(bus, CallContext(call_id="X", caller="", callee="", direction="inbound", carrier="t"))
    bus.emit(
        CallStarted(call_id="X", caller="", callee="", direction="inbound", carrier="t", provider_mode="p")
    )


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc", "_.._etc"),
        ("..", "unknown"),
        ("", "unknown"),
        ("CA123abc", "CA123abc"),
        ("a/b\\c d\x00\x1f\x7fe", "a_b_c_de"),
        ("x" * 80, "x" * 64),
        (".hidden.", "hidden"),
        ("ünï", "_n_"),
    ],
)
def test_sanitize_call_id(raw: str, safe: str) -> None:
    assert sanitize_call_id(raw) == safe


async def test_hostile_call_id_stays_inside_the_day_dir(tmp_path: Path) -> None:
    call = await _run_call(_writer(tmp_path / "root"), call_id="../../etc")
    assert call.parent == tmp_path / "root/calls/2026/04/23" and call.name == "_.._etc"
    assert not (tmp_path / "etc").exists()


def _day(root: Path, y: int, m: int, d: int) -> Path:
    path = root / "calls" / f"{y:04d}" / f"{m:02d}" / f"{d:02d}" / "CA1"
    path.mkdir(parents=True)
    (path / "metadata.json").write_text("{}")
    return path.parent


def test_retention_deletes_old_days_and_empty_parents(tmp_path: Path) -> None:
    now = datetime(2026, 4, 23, 12, tzinfo=UTC).timestamp()
    old = _day(tmp_path, 2025, 12, 31)
    edge_kept = _day(tmp_path, 2026, 3, 24)  # ends after the cutoff (Mar 24 12:00): kept
    edge_gone = _day(tmp_path, 2026, 3, 23)
    recent = _day(tmp_path, 2026, 4, 20)
    (tmp_path / "calls" / "notes").mkdir()
    assert sweep_retention(tmp_path, 30, now=now) == 2
    assert not old.exists() and not (tmp_path / "calls" / "2025").exists()
    assert not edge_gone.exists() and edge_kept.exists() and recent.exists()
    assert (tmp_path / "calls" / "notes").exists()
    assert sweep_retention(tmp_path, 0, now=now) == 0 and recent.exists()


async def test_retention_runs_on_about_two_percent_of_call_starts(tmp_path: Path) -> None:
    old = _day(tmp_path, 2001, 1, 1)
    ten_years = Settings(log_retention_days=3650)  # the calls' own START day stays
    await _run_call(_writer(tmp_path, ten_years, rand_byte=lambda: 5), call_id="A")
    assert old.exists()  # byte 5: no sweep
    await _run_call(_writer(tmp_path, Settings(log_retention_days=0), rand_byte=lambda: 0), call_id="B")
    assert old.exists()  # retention 0 = keep forever
    await _run_call(_writer(tmp_path, ten_years, rand_byte=lambda: 4), call_id="C")
    assert not old.exists() and not (tmp_path / "calls" / "2001").exists()
    assert sorted(p.name for p in (tmp_path / "calls/2026/04/23").iterdir()) == ["A", "B", "C"]


def test_helpers() -> None:
    assert iso_utc(0.0015) == "1970-01-01T00:00:00.001Z"

    class Stt:
        provider_id = "deepgram"

    class A:
        provider, model, voice, language, engine, stt, llm, tts = (
            "pipeline",
            "m",
            None,
            "en",
            None,
            Stt(),
            None,
            None,
        )

    # Pipeline: the realtime ``model``/``voice`` fields are unused defaults, so they are not reported.
    assert agent_snapshot(A()) == {"provider": "pipeline", "language": "en", "stt": "deepgram"}
