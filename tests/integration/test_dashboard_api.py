"""The dashboard API over a store filled by real whole calls (fake Twilio + fake vendors on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from getpatter import Patter
from getpatter.carriers.twilio.config import Twilio
from getpatter.dashboard.notify import DashboardNotifier
from getpatter.dashboard.persistence import DELETED_IDS_FILE, call_dir, iso_utc, write_json_atomic
from getpatter.dashboard.routes import add_dashboard_routes
from getpatter.dashboard.standalone import create_dashboard_app
from getpatter.dashboard.store import MetricsStore
from getpatter.llm.openai import OpenAILLM
from getpatter.settings import Settings
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.server import Running, running
from tests.fakes.twilio import FakeCall
from tests.integration.harness import Harness, call_harness

TOKEN = "s3cret-token"
B3_COLUMNS = [
    "call_id", "caller", "callee", "direction", "started_at", "ended_at", "duration_s", "cost_total",
    "cost_stt", "cost_tts", "cost_llm", "cost_telephony", "avg_latency_ms", "turns_count", "provider_mode",
]  # fmt: skip
UTTERANCES = ["What are your opening hours?", "Thanks, goodbye."]
REPLIES = ["We are open nine to five.", "Have a great day."]


async def converse(h: Harness, turns: int) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    for _ in range(turns):
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.hangup()
    await h.wait_ended()
    return call


async def stored(store: MetricsStore, call_id: str) -> dict[str, Any]:
    """The completed record (the store finishes a call one loop iteration after ``CallEnded``)."""

    async def until() -> dict[str, Any]:
        while (record := store.get_call(call_id)) is None or record.get("metrics") is None:
            await asyncio.sleep(0.01)
        return record

    return await asyncio.wait_for(until(), 5)


@contextlib.asynccontextmanager
async def dashboard(store: MetricsStore, token: str = TOKEN, **kwargs: Any) -> AsyncIterator[Running]:
    app = FastAPI()
    streams = add_dashboard_routes(app, store, token=token, **kwargs)
    async with running(app) as srv:
        try:
            yield srv
        finally:
            streams.close()  # open SSE responses would hold up the server's shutdown


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def finished() -> AsyncIterator[tuple[Harness, FakeCall, Running]]:
    """One finished two-turn call and a dashboard (token ``TOKEN``) over the harness' live store."""
    async with call_harness(utterances=UTTERANCES, replies=REPLIES) as h:
        call = await converse(h, 2)
        await stored(h.phone.metrics_store, call.sid)
        async with dashboard(h.phone.metrics_store) as srv:
            yield h, call, srv


async def test_calls_detail_active_and_aggregates_show_the_real_call(
    finished: tuple[Harness, FakeCall, Running],
) -> None:
    _, call, srv = finished
    async with httpx.AsyncClient(base_url=srv.http_url, headers=auth()) as client:
        calls = (await client.get("/api/dashboard/calls")).json()
        assert [c["call_id"] for c in calls] == [call.sid]
        record = calls[0]
        assert record["caller"] == "+15550001111" and record["callee"] == "+15550002222"
        assert record["status"] == "completed" and record["direction"] == "inbound"
        assert [(t["role"], t["text"]) for t in record["transcript"]] == [
            ("assistant", "Hello, thanks for calling."),
            ("user", UTTERANCES[0]),
            ("assistant", REPLIES[0]),
            ("user", UTTERANCES[1]),
            ("assistant", REPLIES[1]),
        ]
        assert [t["user_text"] for t in record["turns"] if t["user_text"]] == UTTERANCES
        cost = record["metrics"]["cost"]
        assert set(cost) >= {"stt", "tts", "llm", "telephony", "total"}
        assert cost["total"] > 0

        assert (await client.get(f"/api/dashboard/calls/{call.sid}")).json() == record
        missing = await client.get("/api/dashboard/calls/CAnope")
        assert missing.status_code == 404 and missing.json() == {"error": "Not found"}
        assert (await client.get("/api/dashboard/active")).json() == []
        assert (await client.get("/api/dashboard/calls", params={"offset": 1})).json() == []

        agg = (await client.get("/api/dashboard/aggregates")).json()
        assert agg["total_calls"] == 1 and agg["active_calls"] == 0
        assert agg["total_cost"] == pytest.approx(cost["total"])
        assert agg["cost_breakdown"] == {
            k: pytest.approx(cost[k]) for k in ("stt", "tts", "llm", "telephony")
        }
        assert agg["total_minutes"] == pytest.approx(record["metrics"]["duration_seconds"] / 60, abs=0.01)
        assert agg["sdk_version"]
        assert 0 < agg["latency_p50_ms"] <= agg["latency_p95_ms"]


async def test_v1_api(finished: tuple[Harness, FakeCall, Running]) -> None:
    _, call, srv = finished
    async with httpx.AsyncClient(base_url=srv.http_url, headers=auth()) as client:
        listing = (await client.get("/api/v1/calls", params={"limit": 5})).json()
        assert [c["call_id"] for c in listing["data"]] == [call.sid]
        assert listing["pagination"] == {"limit": 5, "offset": 0, "count": 1, "total": 1}
        assert (await client.get("/api/v1/calls/active")).json() == {"data": [], "count": 0}
        assert (await client.get(f"/api/v1/calls/{call.sid}")).json()["data"]["call_id"] == call.sid
        missing = await client.get("/api/v1/calls/CAnope")
        assert missing.status_code == 404 and missing.json() == {"error": "Call not found"}
        overview = (await client.get("/api/v1/analytics/overview")).json()["data"]
        assert overview["total_calls"] == 1
        costs = (await client.get("/api/v1/analytics/costs")).json()["data"]
        assert costs["calls_analyzed"] == 1 and costs["total_cost"] == pytest.approx(overview["total_cost"])
        assert costs["period"] == {"from": None, "to": None}
        tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
        later = (await client.get("/api/v1/analytics/costs", params={"from": tomorrow})).json()["data"]
        assert later["calls_analyzed"] == 0 and later["period"]["from"] == tomorrow
        bad = await client.get("/api/v1/analytics/costs", params={"to": "next tuesday"})
        assert bad.status_code == 400


async def test_exports_have_b3_columns_and_filter_on_start_date(
    finished: tuple[Harness, FakeCall, Running],
) -> None:
    h, call, srv = finished
    record = h.phone.metrics_store.get_call(call.sid)
    assert record is not None
    day = datetime.fromtimestamp(record["started_at"], UTC).date()
    async with httpx.AsyncClient(base_url=srv.http_url, headers=auth()) as client:
        for path, params in (
            ("/api/dashboard/export/calls", {"format": "csv"}),
            ("/api/v1/export/csv", {}),
        ):
            response = await client.get(path, params=params)
            assert response.headers["content-type"].startswith("text/csv")
            assert response.headers["content-disposition"] == 'attachment; filename="patter_calls.csv"'
            rows = list(csv.reader(io.StringIO(response.text)))
            assert rows[0] == B3_COLUMNS
            assert len(rows) == 2
            row = dict(zip(B3_COLUMNS, rows[1], strict=True))
            assert row["call_id"] == call.sid and row["caller"] == "+15550001111"
            assert row["started_at"] == iso_utc(record["started_at"])
            assert float(row["cost_total"]) == pytest.approx(record["metrics"]["cost"]["total"])
            assert int(row["turns_count"]) == len(record["turns"])

        for path, params in (
            ("/api/dashboard/export/calls", {"format": "json"}),
            ("/api/v1/export/json", {}),
        ):
            response = await client.get(path, params=params)
            assert response.headers["content-disposition"] == 'attachment; filename="patter_calls.json"'
            assert [c["call_id"] for c in json.loads(response.text)] == [call.sid]

        async def count(**bounds: str) -> int:
            response = await client.get("/api/dashboard/export/calls", params={"format": "json", **bounds})
            assert response.status_code == 200
            return len(response.json())

        # A date-only bound is UTC midnight; the filter is on started_at.
        assert await count(**{"from": day.isoformat()}) == 1
        assert await count(**{"from": (day + timedelta(days=1)).isoformat()}) == 0
        assert await count(to=(day + timedelta(days=1)).isoformat()) == 1
        assert await count(to=day.isoformat()) == 0
        assert await count(**{"from": iso_utc(record["started_at"] - 1)}, to=iso_utc(record["ended_at"])) == 1

        bad_date = await client.get(
            "/api/dashboard/export/calls", params={"format": "csv", "from": "yesterday"}
        )
        assert bad_date.status_code == 400
        bad_format = await client.get("/api/dashboard/export/calls", params={"format": "xml"})
        assert bad_format.status_code == 400


async def test_soft_delete_hides_the_call_everywhere(finished: tuple[Harness, FakeCall, Running]) -> None:
    _, call, srv = finished
    async with httpx.AsyncClient(base_url=srv.http_url, headers=auth()) as client:
        bad = await client.post("/api/dashboard/calls/delete", json={"call_ids": call.sid})
        assert bad.status_code == 400
        assert (await client.post("/api/dashboard/calls/delete", content=b"{not json")).status_code == 400
        deleted = await client.delete(f"/api/dashboard/calls/{call.sid}")
        assert deleted.json() == {"deleted": [call.sid], "count": 1}
        assert (await client.delete(f"/api/dashboard/calls/{call.sid}")).json() == {"deleted": [], "count": 0}
        assert (await client.get("/api/dashboard/calls")).json() == []
        assert (await client.get(f"/api/dashboard/calls/{call.sid}")).status_code == 404
        assert (await client.get("/api/dashboard/aggregates")).json()["total_calls"] == 0
        assert (await client.get("/api/v1/export/csv")).text.strip().count("\n") == 0


# -- auth --------------------------------------------------------------------------------------------
def protected_routes(call_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", "/", None),
        ("GET", "/dashboard", None),
        ("GET", "/api/dashboard/calls", None),
        ("GET", f"/api/dashboard/calls/{call_id}", None),
        ("GET", "/api/dashboard/active", None),
        ("GET", "/api/dashboard/aggregates", None),
        ("GET", "/api/dashboard/export/calls?format=csv", None),
        ("GET", "/api/dashboard/export/calls?format=json", None),
        ("GET", "/api/v1/calls", None),
        ("GET", "/api/v1/calls/active", None),
        ("GET", f"/api/v1/calls/{call_id}", None),
        ("GET", "/api/v1/analytics/overview", None),
        ("GET", "/api/v1/analytics/costs", None),
        ("GET", "/api/v1/export/csv", None),
        ("GET", "/api/v1/export/json", None),
        ("POST", "/api/dashboard/calls/delete", {"call_ids": []}),
        ("DELETE", "/api/dashboard/calls/CAunknown", None),
    ]


async def status_of(client: httpx.AsyncClient, method: str, url: str, body: Any, **kw: Any) -> int:
    if url.endswith("/events") or "/events?" in url:
        async with client.stream(method, url, **kw) as response:
            return response.status_code
    return (await client.request(method, url, json=body, **kw)).status_code


async def test_every_dashboard_route_needs_the_token(finished: tuple[Harness, FakeCall, Running]) -> None:
    _, call, srv = finished
    routes = [
        *protected_routes(call.sid),
        ("GET", "/api/dashboard/events", None),
        ("GET", "/api/v1/events", None),
    ]
    async with httpx.AsyncClient(base_url=srv.http_url) as client:
        for method, url, body in routes:
            refused = await client.request(method, url, json=body)
            assert (refused.status_code, refused.json()) == (401, {"detail": "Unauthorized"}), url
            assert await status_of(client, method, url, body, headers=auth("wrong")) == 401, url
            assert await status_of(client, method, url, body, headers={"Authorization": TOKEN}) == 401, url
            assert await status_of(client, method, url, body, headers=auth()) == 200, url
            sep = "&" if "?" in url else "?"
            assert await status_of(client, method, f"{url}{sep}token={TOKEN}", body) == 200, url


async def test_empty_token_means_open() -> None:
    async with (
        dashboard(MetricsStore(), token="") as srv,
        httpx.AsyncClient(base_url=srv.http_url) as client,
    ):
        for method, url, body in protected_routes("CAnone"):
            assert (await client.request(method, url, json=body)).status_code in (200, 404), url


async def test_health_and_webhooks_are_never_token_protected() -> None:
    phone = Patter(carrier=Twilio("AC" + "0" * 32, "twilio-token"), phone_number="+15550002222",
                   webhook_url="agent.example.test")  # fmt: skip
    agent = phone.agent(
        "Be brief.",
        stt=DeepgramSTT(api_key="k", base_url="ws://127.0.0.1:9"),
        llm=OpenAILLM(api_key="k", base_url="http://127.0.0.1:9/v1"),
        tts=ElevenLabsTTS(api_key="k", base_url="http://127.0.0.1:9"),
    )
    app = phone.asgi_app(agent, dashboard_token=TOKEN)
    async with running(app) as srv, httpx.AsyncClient(base_url=srv.http_url) as client:
        assert (await client.get("/health")).status_code == 200
        unsigned = await client.post("/webhooks/twilio/voice", data={"CallSid": "CA1"})
        assert unsigned.status_code == 403  # the carrier signature check, not the dashboard token
        assert (await client.get("/")).status_code == 401
        assert (await client.get("/", headers=auth())).status_code == 200

    standalone = create_dashboard_app(MetricsStore(), token=TOKEN)
    async with running(standalone) as srv, httpx.AsyncClient(base_url=srv.http_url) as client:
        health = await client.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok", "mode": "dashboard"})
        assert (await client.get("/api/dashboard/calls")).status_code == 401
        assert (await client.post("/api/dashboard/ingest", json={"call_id": "x"})).status_code == 401


# -- live events ------------------------------------------------------------------------------------
async def read_events(client: httpx.AsyncClient, url: str, into: list[tuple[str, Any]], stop: str) -> None:
    """Collect ``(event, data)`` (comments as ``(":", text)``) until an event of type ``stop``."""
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith(":"):
                into.append((":", line[1:].strip()))
                if stop == ":" + line[1:].strip():
                    return
            elif line.startswith("event: "):
                kind = line[len("event: ") :]
            elif line.startswith("data: "):
                into.append((kind, json.loads(line[len("data: ") :])))
                if kind == stop:
                    return


@pytest.mark.parametrize("path", ["/api/dashboard/events", "/api/v1/events"])
async def test_sse_streams_a_live_call(path: str) -> None:
    events: list[tuple[str, Any]] = []
    async with (
        call_harness(utterances=UTTERANCES[:1], replies=REPLIES[:1]) as h,
        dashboard(h.phone.metrics_store) as srv,
        httpx.AsyncClient(base_url=srv.http_url, timeout=10) as client,
    ):
        reader = asyncio.create_task(read_events(client, f"{path}?token={TOKEN}", events, "call_end"))
        await until(lambda: bool(events))  # ": connected": subscribed before the call starts
        call = await converse(h, 1)
        await asyncio.wait_for(reader, 10)
    kinds = [k for k, _ in events if k != ":"]
    assert kinds[0] == "call_start" and kinds[-1] == "call_end"
    start = events[[k for k, _ in events].index("call_start")][1]
    assert start == {"call_id": call.sid, "caller": "+15550001111", "callee": "+15550002222",
                     "direction": "inbound"}  # fmt: skip
    lines = [d for k, d in events if k == "transcript_line"]
    assert [(d["role"], d["text"]) for d in lines] == [
        ("assistant", "Hello, thanks for calling."),
        ("user", UTTERANCES[0]),
        ("assistant", REPLIES[0]),
    ]
    assert all(d["call_id"] == call.sid and isinstance(d["turnIndex"], int) for d in lines)
    assert "turn_complete" in kinds
    end = events[-1][1]
    assert end["call_id"] == call.sid and end["metrics"]["cost"]["total"] > 0


async def test_sse_keepalive_when_idle() -> None:
    async with dashboard(MetricsStore(), keepalive_seconds=0.05) as srv:
        events: list[tuple[str, Any]] = []
        async with httpx.AsyncClient(base_url=srv.http_url, headers=auth(), timeout=10) as client:
            await asyncio.wait_for(read_events(client, "/api/dashboard/events", events, ":keepalive"), 10)
    assert events[-1] == (":", "keepalive")


async def test_sse_subscriber_that_falls_behind_is_closed() -> None:
    store = MetricsStore()
    async with dashboard(store) as srv:
        events: list[tuple[str, Any]] = []
        async with httpx.AsyncClient(base_url=srv.http_url, headers=auth(), timeout=10) as client:
            reader = asyncio.create_task(read_events(client, "/api/dashboard/events", events, "never"))
            await until(lambda: bool(events))
            for i in range(150):  # one synchronous burst: the stream cannot drain in between
                store.record_transcript_line("CAflood", "user", f"line {i}")
            await asyncio.wait_for(reader, 10)  # the server ended the stream: the browser reconnects
    assert [k for k, _ in events if k != ":"] == []


# -- standalone dashboard: ingest ------------------------------------------------------------------
async def test_ingest_contract() -> None:
    store = MetricsStore()
    async with (
        running(create_dashboard_app(store)) as srv,
        httpx.AsyncClient(base_url=srv.http_url) as client,
    ):
        missing = await client.post("/api/dashboard/ingest", json={"caller": "+1555"})
        assert (missing.status_code, missing.json()) == (400, {"ok": False, "error": "missing call_id"})
        bad_json = await client.post(
            "/api/dashboard/ingest", content=b"nope", headers={"Content-Type": "application/json"}
        )
        assert bad_json.status_code == 400
        # Without a token, only declared JSON may change state (no cross-site form/text posts).
        assert (await client.post("/api/dashboard/ingest", content=b"nope")).status_code == 403
        wrong_type = await client.post("/api/dashboard/ingest", json={"call_id": "c", "caller": 5})
        assert wrong_type.status_code == 400

        dial = {"call_id": "CAout", "caller": "+15550002222", "callee": "+15550003333",
                "direction": "outbound", "status": "initiated"}  # fmt: skip
        reply = (await client.post("/api/dashboard/ingest", json=dial)).json()
        assert reply == {"ok": True, "call_id": "CAout", "event": "call_initiated"}
        active = (await client.get("/api/dashboard/active")).json()
        assert [(c["call_id"], c["status"]) for c in active] == [("CAout", "initiated")]

        start = {"call_id": "CAin", "caller": "+15550001111", "callee": "+15550002222", "started_at": 1000.0}
        assert (await client.post("/api/dashboard/ingest", json=start)).json()["event"] == "call_start"
        assert {c["call_id"] for c in (await client.get("/api/dashboard/active")).json()} == {"CAout", "CAin"}

        end = {
            "call_id": "CAin",
            "ended_at": 1012.5,
            "transcript": [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}],
            "metrics": {"duration_seconds": 12.5, "cost": {"stt": 0.01, "tts": 0.02, "llm": 0.0,
                        "telephony": 0.03, "total": 0.06}},
        }  # fmt: skip
        assert (await client.post("/api/dashboard/ingest", json=end)).json() == {
            "ok": True, "call_id": "CAin", "event": "call_end"
        }  # fmt: skip
        record = (await client.get("/api/dashboard/calls/CAin")).json()
        assert record["started_at"] == 1000.0 and record["ended_at"] == 1012.5
        assert [(t["role"], t["text"]) for t in record["transcript"]] == [
            ("user", "hi"),
            ("assistant", "hello"),
        ]
        assert record["metrics"]["cost"]["total"] == 0.06
        agg = (await client.get("/api/dashboard/aggregates")).json()
        assert agg["total_calls"] == 1 and agg["active_calls"] == 1 and agg["total_cost"] == 0.06


async def test_sdk_notifies_a_standalone_dashboard_of_a_real_call() -> None:
    board = MetricsStore()
    async with running(create_dashboard_app(board)) as srv:
        notifier = DashboardNotifier(port=srv.port, settings=Settings(dashboard_notify=True))
        async with call_harness(
            utterances=UTTERANCES[:1], replies=REPLIES[:1], observers=[notifier.observer]
        ) as h:
            call = await converse(h, 1)
            record = await stored(board, call.sid)
            await notifier.drain()
    assert record["caller"] == "+15550001111" and record["status"] == "completed"
    assert [t["text"] for t in record["transcript"]] == [
        "Hello, thanks for calling.",
        UTTERANCES[0],
        REPLIES[0],
    ]
    local = h.phone.metrics_store.get_call(call.sid)
    assert local is not None
    assert record["metrics"]["cost"] == local["metrics"]["cost"]


async def test_notify_off_posts_nothing() -> None:
    board = MetricsStore()
    async with running(create_dashboard_app(board)) as srv:
        notifier = DashboardNotifier(port=srv.port, settings=Settings(dashboard_notify=False))
        async with call_harness(
            utterances=UTTERANCES[:1], replies=REPLIES[:1], observers=[notifier.observer]
        ) as h:
            call = await converse(h, 1)
            await stored(h.phone.metrics_store, call.sid)
            await notifier.drain()
    assert board.get_calls() == [] and board.get_active_calls() == []


async def test_standalone_hydrates_a_log_dir_and_persists_soft_deletes(tmp_path: Path) -> None:
    started = datetime(2026, 4, 23, 18, 2, 12, tzinfo=UTC).timestamp()
    for call_id, offset in (("CAold", 0.0), ("CAnew", 60.0)):
        meta = {"schema_version": "1.0", "call_id": call_id, "started_at": iso_utc(started + offset),
                "ended_at": iso_utc(started + offset + 30), "duration_ms": 30000.0, "status": "completed",
                "caller": "***1111", "callee": "***2222", "direction": "inbound",
                "cost": {"stt": 0.0, "tts": 0.0, "llm": 0.0, "telephony": 0.01, "total": 0.01}}  # fmt: skip
        write_json_atomic(call_dir(tmp_path, call_id, started + offset) / "metadata.json", meta)

    app = create_dashboard_app(MetricsStore(), TOKEN, log_dir=tmp_path)
    async with running(app) as srv, httpx.AsyncClient(base_url=srv.http_url, headers=auth()) as client:
        assert [c["call_id"] for c in (await client.get("/api/dashboard/calls")).json()] == ["CAnew", "CAold"]
        reply = await client.post("/api/dashboard/calls/delete", json={"call_ids": ["CAold", "CAnope"]})
        assert reply.json() == {"deleted": ["CAold"], "count": 1}

    marker = tmp_path / DELETED_IDS_FILE

    async def saved() -> None:
        while not marker.exists() or "CAold" not in marker.read_text():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(saved(), 5)
    assert (call_dir(tmp_path, "CAold", started) / "metadata.json").exists()  # never touches the log
    again = create_dashboard_app(MetricsStore(), TOKEN, log_dir=tmp_path)
    async with running(again) as srv, httpx.AsyncClient(base_url=srv.http_url, headers=auth()) as client:
        assert [c["call_id"] for c in (await client.get("/api/dashboard/calls")).json()] == ["CAnew"]
        assert (await client.get("/api/dashboard/calls/CAold")).status_code == 404
