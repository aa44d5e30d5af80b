"""The standalone dashboard's ingest contract (API.md A.15), applied to a store."""

from __future__ import annotations

from typing import Any

import pytest

from getpatter.dashboard.standalone import IngestError, ingest, parse_ingest
from getpatter.dashboard.store import MetricsStore


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "body must be a JSON object"),
        ({}, "missing call_id"),
        ({"call_id": ""}, "missing call_id"),
        ({"call_id": True}, "missing call_id"),
        ({"call_id": "x" * 257}, "longer than 256"),
        ({"call_id": "c", "caller": 1}, "caller must be a string"),
        ({"call_id": "c", "direction": "sideways"}, "direction"),
        ({"call_id": "c", "started_at": "soon"}, "started_at"),
        ({"call_id": "c", "transcript": "hi"}, "transcript must be a list"),
        ({"call_id": "c", "transcript": [{"role": "user"}]}, "transcript entries"),
        ({"call_id": "c", "metrics": [1]}, "metrics must be an object"),
    ],
)
def test_rejects(body: Any, message: str) -> None:
    with pytest.raises(IngestError, match=message):
        parse_ingest(body)


def test_keeps_only_known_fields() -> None:
    data = parse_ingest(
        {
            "call_id": 42,
            "caller": "+1555",
            "evil": "x",
            "started_at": "2026-04-23T00:00:00Z",
            "transcript": [{"role": "user", "text": "hi", "extra": 1, "timestamp": 5}],
        }
    )
    assert data == {
        "call_id": "42",
        "caller": "+1555",
        "started_at": 1776902400.0,
        "transcript": [{"role": "user", "text": "hi", "timestamp": 5.0}],
    }


def test_lifecycle() -> None:
    store = MetricsStore()
    assert ingest(store, {"call_id": "o", "status": "initiated", "direction": "outbound"}) == (
        "o",
        "call_initiated",
    )
    assert store.get_active("o") is not None
    assert ingest(store, {"call_id": "c", "caller": "+1", "started_at": 10.0}) == ("c", "call_start")
    assert store.get_active("c") is not None
    reply = ingest(store, {"call_id": "c", "ended_at": 20.0, "metrics": {"duration_seconds": 10.0}})
    assert reply == ("c", "call_end")
    record = store.get_call("c")
    assert record is not None and store.get_active("c") is None
    assert record["caller"] == "+1" and record["metrics"]["call_id"] == "c"
    # An end with no start seen (dashboard started mid-call) still records the call.
    ingest(store, {"call_id": "late", "started_at": 1.0, "ended_at": 2.0})
    late = store.get_call("late")
    assert late is not None and late["started_at"] == 1.0 and late["metrics"]["duration_seconds"] == 1.0
