"""The dashboard's exports (API.md B.3): calls as CSV and JSON, and the per-call figures they show."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any

from getpatter.dashboard.persistence import iso_utc

Record = dict[str, Any]
CSV_COLUMNS = (
    "call_id",
    "caller",
    "callee",
    "direction",
    "started_at",
    "ended_at",
    "duration_s",
    "cost_total",
    "cost_stt",
    "cost_tts",
    "cost_llm",
    "cost_telephony",
    "avg_latency_ms",
    "turns_count",
    "provider_mode",
)


def call_latency(record: Record) -> float:
    """A call's headline latency: average ``agent_response_ms``, else average ``total_ms`` (B.2)."""
    avg = (record.get("metrics") or {}).get("latency_avg") or {}
    for key in ("agent_response_ms", "total_ms"):
        value = avg.get(key)
        if isinstance(value, int | float) and value > 0:
            return float(value)
    return 0.0


def call_cost(record: Record) -> dict[str, Any]:
    return (record.get("metrics") or {}).get("cost") or {}


_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def _csv_cell(value: Any) -> Any:
    """Defuse spreadsheet formulas: a text cell starting with ``= + - @``, tab or CR gets a leading ``'``,
    unless it is a plain number (an E.164 phone number like ``+15551234567``), which no sheet evaluates."""
    if isinstance(value, str) and value[:1] in ("=", "@", "\t", "\r", "+", "-"):
        if _PLAIN_NUMBER.fullmatch(value):
            return value
        return "'" + value
    return value


def calls_to_csv(calls: Sequence[Record]) -> str:
    """The B.3 CSV export (times as UTC ISO-8601, money in USD)."""
    out = io.StringIO()
    # RFC 4180 CRLF rows: a CR or LF inside a cell then gets the cell quoted, so no cell can forge a row.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in calls:
        metrics, cost = r.get("metrics") or {}, call_cost(r)
        row = [
            r.get("call_id", ""),
            r.get("caller", ""),
            r.get("callee", ""),
            r.get("direction", ""),
            iso_utc(r["started_at"]) if r.get("started_at") else "",
            iso_utc(r["ended_at"]) if r.get("ended_at") else "",
            metrics.get("duration_seconds", 0.0),
            cost.get("total", 0.0),
            cost.get("stt", 0.0),
            cost.get("tts", 0.0),
            cost.get("llm", 0.0),
            cost.get("telephony", 0.0),
            call_latency(r),
            len(r.get("turns") or []),
            metrics.get("provider_mode", r.get("provider_mode", "")),
        ]
        writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue()


def calls_to_json(calls: Sequence[Record]) -> str:
    """The B.3 JSON export: the list of call records."""
    return json.dumps(list(calls), ensure_ascii=False, indent=2, default=str)


__all__ = ["CSV_COLUMNS", "call_cost", "call_latency", "calls_to_csv", "calls_to_json"]
