"""Attacks 4 (SSE), 5 (ids with ``/``) and 6 of issue 18 against both dashboards.

Figures before the fix: CSV cells starting with ``+ - = @`` exported unescaped; a token-less dashboard
(embedded on loopback, and ``getpatter dashboard``) accepted cross-site ``text/plain`` POSTs (calls deleted,
fake calls ingested) and any ``Host`` (DNS rebinding); one ingest with ``NaN``/``Infinity`` made lists,
aggregates and exports 500 until restart; 300 live callers of 1 MB each cost +300 MB; call ids with ``/``
could not be opened or deleted; SSE streams were unbounded.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from getpatter.dashboard import standalone
from getpatter.dashboard.routes import add_dashboard_routes
from getpatter.dashboard.standalone import create_dashboard_app, ingest
from getpatter.dashboard.store import MetricsStore, calls_to_csv
from tests.fakes.server import Running, running

SLASH_ID = "v3:ab/cd+ef=="


def _finished(store: MetricsStore, call_id: str, caller: str = "+15550001111") -> None:
    ingest(store, {"call_id": call_id, "caller": caller, "started_at": 1_700_000_000})
    ingest(store, {"call_id": call_id, "ended_at": 1_700_000_060, "metrics": {"duration_seconds": 60.0}})


async def _embedded(store: MetricsStore, token: str = "") -> AsyncIterator[Running]:
    app = FastAPI()
    add_dashboard_routes(app, store, token=token)
    async with running(app) as server:
        yield server


def test_csv_export_defuses_every_formula_leading_cell() -> None:
    store = MetricsStore()
    hostile = ['=HYPERLINK("http://x")', "+1)*cmd|' /C calc'!A0", "-1+1|cmd", "@SUM(A1)", "\t=1", "\r=1"]
    for n, caller in enumerate(hostile):
        _finished(store, f"c{n}", caller)
    _finished(store, "plain", "+15551234567")
    rows = list(csv.DictReader(io.StringIO(calls_to_csv(store.get_calls(100)), newline="")))
    callers = {row["call_id"]: row["caller"] for row in rows}
    for n, caller in enumerate(hostile):
        assert callers[f"c{n}"] == "'" + caller, callers[f"c{n}"]
    assert callers["plain"] == "+15551234567"


@pytest.mark.parametrize("kind", ["embedded", "standalone"])
async def test_tokenless_dashboards_refuse_cross_site_posts_and_foreign_hosts(kind: str) -> None:
    store = MetricsStore()
    _finished(store, "CA-keep")
    app: Any
    if kind == "embedded":
        app = FastAPI()
        add_dashboard_routes(app, store)
    else:
        app = create_dashboard_app(store)
    body = json.dumps({"call_ids": ["CA-keep"]})
    async with running(app) as server, httpx.AsyncClient(base_url=server.http_url, timeout=20) as client:
        # CSRF: what a hostile page's <form enctype="text/plain"> or fetch(no-cors) can send.
        forged = await client.post(
            "/api/dashboard/calls/delete",
            content=body,
            headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
        )
        assert forged.status_code == 403
        plain = await client.post(
            "/api/dashboard/calls/delete", content=body, headers={"Content-Type": "text/plain"}
        )
        assert plain.status_code == 403
        cross = await client.delete("/api/dashboard/calls/CA-keep", headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403
        assert store.get_call("CA-keep") is not None
        if kind == "standalone":
            fake = json.dumps({"call_id": "CA-fake", "status": "initiated"})
            refused = await client.post(
                "/api/dashboard/ingest", content=fake, headers={"Content-Type": "text/plain"}
            )
            assert refused.status_code == 403 and store.get_active("CA-fake") is None
        # DNS rebinding: the page's own host name reaches 127.0.0.1.
        rebound = await client.get("/api/dashboard/calls", headers={"Host": f"evil.example:{server.port}"})
        assert rebound.status_code == 403
        # The owner's own browser and the SDK's notifier still work.
        assert (await client.get("/api/dashboard/calls")).status_code == 200
        same = await client.post(
            "/api/dashboard/calls/delete",
            content=body,
            headers={"Content-Type": "application/json", "Origin": server.http_url},
        )
        assert same.status_code == 200 and same.json()["count"] == 1


async def test_allowed_hosts_extend_the_host_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_DASHBOARD_ALLOWED_HOSTS", "dash.internal, other.internal")
    app = create_dashboard_app(MetricsStore())
    async with running(app) as server, httpx.AsyncClient(base_url=server.http_url, timeout=20) as client:
        ok = await client.get("/api/dashboard/calls", headers={"Host": "dash.internal:8000"})
        assert ok.status_code == 200
        assert (await client.get("/api/dashboard/calls", headers={"Host": "x.internal"})).status_code == 403


async def test_with_a_token_state_changes_need_the_token() -> None:
    store = MetricsStore()
    _finished(store, "CA-keep")
    app = FastAPI()
    add_dashboard_routes(app, store, token="s3cret")
    async with running(app) as server, httpx.AsyncClient(base_url=server.http_url, timeout=20) as client:
        assert (await client.delete("/api/dashboard/calls/CA-keep")).status_code == 401
        assert store.get_call("CA-keep") is not None
        ok = await client.delete("/api/dashboard/calls/CA-keep", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["count"] == 1


@pytest.mark.parametrize(
    "raw",
    [
        b'{"call_id": "CA1", "started_at": NaN}',
        b'{"call_id": "CA1", "started_at": Infinity}',
        b'{"call_id": "CA1", "ended_at": -Infinity}',
        b'{"call_id": "CA1", "started_at": 1e400}',
        b'{"call_id": "CA1", "ended_at": 1700000000, "metrics": {"duration_seconds": NaN}}',
        b'{"call_id": "CA1", "ended_at": 1700000000, "metrics": {"cost": {"total": 1e999}}}',
    ],
)
async def test_non_finite_numbers_are_refused_and_the_dashboard_keeps_working(raw: bytes) -> None:
    store = MetricsStore()
    _finished(store, "CA-ok")
    app = create_dashboard_app(store)
    async with running(app) as server, httpx.AsyncClient(base_url=server.http_url, timeout=20) as client:
        headers = {"Content-Type": "application/json"}
        assert (await client.post("/api/dashboard/ingest", content=raw, headers=headers)).status_code == 400
        for path in ("/api/dashboard/calls", "/api/dashboard/aggregates", "/api/v1/export/csv"):
            assert (await client.get(path)).status_code == 200, path


async def test_live_calls_and_field_sizes_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(standalone, "MAX_LIVE_CALLS", 20)
    store = MetricsStore()
    app = create_dashboard_app(store)
    async with running(app) as server, httpx.AsyncClient(base_url=server.http_url, timeout=20) as client:

        async def start(call_id: str, caller: str = "+1555") -> int:
            body = {"call_id": call_id, "caller": caller, "started_at": 1_700_000_000}
            return (await client.post("/api/dashboard/ingest", json=body)).status_code

        huge = await start("CA-huge", "x" * 1024 * 1024)
        statuses = [await start(f"CA{n}") for n in range(25)]
    assert huge in (400, 413) and store.get_active("CA-huge") is None
    assert statuses == [200] * 20 + [400] * 5
    assert len(store.get_active_calls()) == 20


async def test_call_ids_with_a_slash_can_be_opened_and_deleted() -> None:
    store = MetricsStore()
    _finished(store, SLASH_ID)
    app = FastAPI()
    add_dashboard_routes(app, store)
    async with running(app) as server, httpx.AsyncClient(base_url=server.http_url, timeout=20) as client:
        path = quote(SLASH_ID, safe="")
        for prefix in ("/api/dashboard/calls/", "/api/v1/calls/"):
            opened = await client.get(prefix + path)
            assert opened.status_code == 200, prefix
        deleted = await client.delete("/api/dashboard/calls/" + path)
        assert deleted.status_code == 200 and deleted.json()["deleted"] == [SLASH_ID]
        assert (await client.get("/api/dashboard/calls/" + path)).status_code == 404


async def test_open_event_streams_are_capped() -> None:
    app = FastAPI()
    streams = add_dashboard_routes(app, MetricsStore())
    streams.max_open = 3
    async with running(app) as server, httpx.AsyncClient(base_url=server.http_url, timeout=20) as client:
        async with contextlib_streams(client, 3) as opened:
            assert all(r.status_code == 200 for r in opened)
            await asyncio.wait_for(_until_open(streams, 3), 10)
            extra = await client.get("/api/dashboard/events")
            assert extra.status_code == 503
        streams.close()


async def _until_open(streams: Any, count: int) -> None:
    while streams.open_count < count:
        await asyncio.sleep(0.02)


class contextlib_streams:
    """Open ``count`` SSE responses and keep them open for the block."""

    def __init__(self, client: httpx.AsyncClient, count: int) -> None:
        self.client, self.count = client, count
        self._managers: list[Any] = []

    async def __aenter__(self) -> list[httpx.Response]:
        opened = []
        for _ in range(self.count):
            manager = self.client.stream("GET", "/api/dashboard/events")
            self._managers.append(manager)
            opened.append(await manager.__aenter__())
        return opened

    async def __aexit__(self, *exc: object) -> None:
        for manager in self._managers:
            await manager.__aexit__(None, None, None)
