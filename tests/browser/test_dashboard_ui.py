"""The dashboard page in headless Chromium: token gate, live transcript over SSE, escaping, export.

Needs ``pip install playwright`` (the Python package only) and a system Chromium at ``/usr/bin/chromium``;
skipped cleanly without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from getpatter.dashboard.routes import add_dashboard_routes, close_event_streams
from getpatter.dashboard.standalone import create_dashboard_app, ingest
from getpatter.dashboard.store import MetricsStore
from tests.fakes.server import Running, running
from tests.integration.harness import call_harness

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]
playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")

TOKEN = "ui-token"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]  # fmt: skip
B3_COLUMNS = [
    "call_id", "caller", "callee", "direction", "started_at", "ended_at", "duration_s", "cost_total",
    "cost_stt", "cost_tts", "cost_llm", "cost_telephony", "avg_latency_ms", "turns_count", "provider_mode",
]  # fmt: skip
EVIL_USER = "<script>alert(1)</script><img src=x onerror=alert(2)>"
EVIL_AGENT = "<b>bold</b> <svg onload=alert(3)>"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(accept_downloads=True)
    page = await context.new_page()
    page.dialogs = []  # every alert/confirm the page ever opened
    page.on(
        "dialog",
        lambda dialog: (page.dialogs.append(dialog.message), asyncio.ensure_future(dialog.dismiss())),
    )
    # Nothing may load from outside this machine.
    page.outside = []
    page.on(
        "request",
        lambda r: None if "127.0.0.1" in r.url or r.url.startswith("data:") else page.outside.append(r.url),
    )
    try:
        yield page
    finally:
        await context.close()


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[Running]:
    async with running(app) as srv:
        try:
            yield srv
        finally:
            close_event_streams(app)  # the page's SSE stream would hold up the server's shutdown


def board(store: MetricsStore) -> contextlib.AbstractAsyncContextManager[Running]:
    app = FastAPI()
    add_dashboard_routes(app, store, token=TOKEN)
    return served(app)


async def open_dashboard(page: Any, srv: Running) -> None:
    response = await page.goto(f"{srv.http_url}/?token={TOKEN}")
    assert response.status == 200
    await playwright_api.expect(page.locator("#conn")).to_have_text("Live", timeout=10_000)


def finished_store() -> MetricsStore:
    store = MetricsStore()
    ingest(
        store,
        {
            "call_id": "CAdone",
            "caller": "+15550001111",
            "callee": "+15550002222",
            "started_at": 1_700_000_000.0,
        },
    )
    ingest(store, {
        "call_id": "CAdone", "ended_at": 1_700_000_042.0,
        "transcript": [{"role": "user", "text": "Hi there"}, {"role": "assistant", "text": "Hello!"}],
        "metrics": {"duration_seconds": 42.0, "provider_mode": "pipeline",
                    "cost": {"stt": 0.001, "tts": 0.002, "llm": 0.003, "telephony": 0.004, "total": 0.01}},
    })  # fmt: skip
    return store


async def test_page_loads_with_the_token_and_refuses_without(page: Any) -> None:
    async with served(create_dashboard_app(finished_store(), TOKEN)) as srv:
        refused = await page.goto(srv.http_url + "/")
        assert refused.status == 401
        assert "Unauthorized" in await page.inner_text("body")
        assert (await page.goto(f"{srv.http_url}/dashboard?token=wrong")).status == 401

        await open_dashboard(page, srv)
        row = page.locator("#history tbody tr[data-call-id='CAdone']")
        await playwright_api.expect(row).to_contain_text("+15550001111")
        await playwright_api.expect(row).to_contain_text("$0.0100")
        await playwright_api.expect(page.locator("#stats")).to_contain_text("Calls")
        await row.click()
        detail = page.locator("#detail")
        await playwright_api.expect(detail.locator("#detail-transcript")).to_contain_text("Hi there")
        await playwright_api.expect(detail.locator("#detail-cost")).to_contain_text("$0.0040")
        assert await page.locator("#chart-cost svg rect").count() == 4
    assert page.dialogs == [] and page.outside == []


async def test_live_transcript_appears_without_reload_and_survives_hostile_text(page: Any) -> None:
    async with (
        call_harness(utterances=[EVIL_USER], replies=[EVIL_AGENT]) as h,
        board(h.phone.metrics_store) as srv,
    ):
        await open_dashboard(page, srv)
        await page.evaluate("window.__sameDocument = true")
        call = await h.dial()
        card = page.locator(f".live-call[data-call-id='{call.sid}']")
        await playwright_api.expect(card).to_contain_text("Hello, thanks for calling.", timeout=10_000)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        # The caller's words and the agent's answer show up while the call is still live.
        await playwright_api.expect(card).to_contain_text(EVIL_USER, timeout=10_000)
        await playwright_api.expect(card).to_contain_text(EVIL_AGENT, timeout=10_000)
        lines = await card.locator(".transcript-line").all_inner_texts()
        assert [text.split("\n", 1)[1] for text in lines] == [
            "Hello, thanks for calling.",
            EVIL_USER,
            EVIL_AGENT,
        ]

        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()
        row = page.locator(f"#history tbody tr[data-call-id='{call.sid}']")
        await playwright_api.expect(row).to_be_visible(timeout=10_000)
        await playwright_api.expect(card).to_have_count(0)
        await row.click()
        transcript = page.locator("#detail-transcript")
        await playwright_api.expect(transcript).to_contain_text(EVIL_USER)
        await playwright_api.expect(page.locator("#detail-turns")).to_contain_text(EVIL_AGENT)
        assert await page.evaluate("window.__sameDocument") is True  # never reloaded
        # Rendered as text: no element came out of the transcript, nothing ran.
        assert await page.locator("img, b, script:not(:first-of-type)").count() == 0
        assert await page.locator("main svg[onload], main [onerror]").count() == 0
    assert page.dialogs == []
    assert page.outside == []


async def test_export_downloads_csv_with_documented_columns(page: Any, tmp_path: Path) -> None:
    async with served(create_dashboard_app(finished_store(), TOKEN)) as srv:
        await open_dashboard(page, srv)
        async with page.expect_download() as info:
            await page.click("#export-csv")
        download = await info.value
        assert download.suggested_filename == "patter_calls.csv"
        target = tmp_path / "all.csv"
        await download.save_as(target)
        rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
        assert rows[0] == B3_COLUMNS
        assert [r[0] for r in rows[1:]] == ["CAdone"]
        assert rows[1][B3_COLUMNS.index("cost_total")] == "0.01"

        await page.fill("#export-from", "2030-01-01")  # after the call: the filter leaves only the header
        async with page.expect_download() as info:
            await page.click("#export-csv")
        filtered = tmp_path / "filtered.csv"
        await (await info.value).save_as(filtered)
        assert list(csv.reader(io.StringIO(filtered.read_text(encoding="utf-8")))) == [B3_COLUMNS]

        await page.fill("#export-from", "")
        async with page.expect_download() as info:
            await page.click("#export-json")
        assert (await info.value).suggested_filename == "patter_calls.json"


async def test_refused_calls_show_on_the_overview_and_count_up_live(page: Any) -> None:
    store = finished_store()
    store.record_call_refused("CAbusy1", "inbound", "capacity")
    async with served(create_dashboard_app(store, TOKEN)) as srv:
        await open_dashboard(page, srv)
        card = page.locator("#stats .stat", has_text="Refused (busy)")
        await playwright_api.expect(card.locator(".value")).to_have_text("1")
        store.record_call_refused("CAbusy2", "inbound", "loop_lag")  # while the page is open
        await playwright_api.expect(card.locator(".value")).to_have_text("2", timeout=10_000)
    assert page.dialogs == [] and page.outside == []
