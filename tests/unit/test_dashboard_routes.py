"""Dashboard routes: date bounds, overview numbers, the page's safety properties, SSE stream lifecycle."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from getpatter.dashboard.routes import EventStreams, add_dashboard_routes, index_html, overview, parse_when
from getpatter.dashboard.store import MetricsStore


def test_parse_when() -> None:
    assert parse_when(None) is None and parse_when("") is None and parse_when("  ") is None
    midnight = datetime(2026, 4, 23, tzinfo=UTC).timestamp()
    assert parse_when("2026-04-23") == midnight  # a bare date is UTC midnight
    assert parse_when("2026-04-23T00:00:00Z") == midnight
    assert parse_when("2026-04-23T02:00:00+02:00") == midnight
    assert parse_when("2026-04-23T18:02:12.413Z") == pytest.approx(midnight + 18 * 3600 + 132.413)
    for bad in ("yesterday", "2026-13-01", "1714000000"):
        with pytest.raises(ValueError):
            parse_when(bad)


def _turn(index: int, response_ms: float | None, total_ms: float) -> dict[str, Any]:
    latency = {
        "stt_ms": 0.0,
        "llm_ms": 0.0,
        "tts_ms": 0.0,
        "total_ms": total_ms,
        "agent_response_ms": response_ms,
    }
    return {"turn_index": index, "user_text": "", "agent_text": "", "latency": latency}


def test_overview_adds_minutes_and_turn_latency_percentiles() -> None:
    store = MetricsStore()
    # 20 turns over two calls: response times 10..200 ms (one turn only has total_ms).
    values = [float(v) for v in range(10, 210, 10)]
    for n, chunk in enumerate((values[:10], values[10:])):
        call_id = f"c{n}"
        store.record_call_start({"call_id": call_id, "started_at": 100.0 + n})
        turns = [_turn(i, v, 999.0) for i, v in enumerate(chunk)]
        if n == 1:
            turns[-1] = _turn(9, None, 200.0)
        metrics = {"duration_seconds": 90.0, "turns": turns, "cost": {"total": 0.5, "stt": 0.5}}
        store.record_call_end({"call_id": call_id, "ended_at": 200.0}, metrics)
    store.record_call_start({"call_id": "live"})
    data = overview(store, "9.9.9")
    assert data["sdk_version"] == "9.9.9"
    assert data["total_calls"] == 2 and data["active_calls"] == 1
    assert data["total_minutes"] == 3.0
    assert data["turns_measured"] == 20
    assert data["latency_p50_ms"] == 100.0  # nearest rank: the 10th of 20
    assert data["latency_p95_ms"] == 190.0  # the 19th of 20
    assert data["cost_breakdown"]["stt"] == 1.0


def test_overview_of_an_empty_store() -> None:
    data = overview(MetricsStore(), "1")
    assert (data["total_minutes"], data["latency_p50_ms"], data["latency_p95_ms"]) == (0.0, 0.0, 0.0)


def test_page_is_self_contained_and_never_parses_data_as_html() -> None:
    html = index_html()
    assert html.count("<script>") == 1 and html.count("<style>") == 1
    # Nothing loads from anywhere: no external scripts, styles, fonts or images.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in html
    assert "textContent" in html


async def test_page_headers_lock_it_down() -> None:
    app = FastAPI()
    add_dashboard_routes(app, MetricsStore(), token="t")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        first = await client.get("/?token=t")
        second = await client.get("/dashboard", headers={"Authorization": "Bearer t"})
    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    policy = first.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in first.text
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert policy != second.headers["content-security-policy"]  # a fresh nonce per response
    assert first.headers["x-frame-options"] == "DENY" and first.headers["cache-control"] == "no-store"


async def _next(stream: Any) -> str:
    return str(await asyncio.wait_for(anext(stream), 5))


async def test_stream_formats_events_and_ends_on_overflow() -> None:
    store = MetricsStore()
    streams = EventStreams(store, keepalive=60)
    stream = streams.stream()
    assert (await _next(stream)).endswith(": connected\n\n")
    assert streams.open_count == 1
    store.record_transcript_line("c1", "user", 'say "hi"\n<b>')
    chunk = await _next(stream)
    assert chunk == (
        'event: transcript_line\ndata: {"call_id": "c1", "turnIndex": 0, "role": "user", '
        '"text": "say \\"hi\\"\\n<b>"}\n\n'
    )
    for i in range(150):  # falls 100 events behind: the store drops it and the stream ends
        store.record_transcript_line("c1", "user", str(i))
    with pytest.raises(StopAsyncIteration):
        await _next(stream)
    assert streams.open_count == 0


async def test_keepalive_comment_when_idle() -> None:
    stream = EventStreams(MetricsStore(), keepalive=0.01).stream()
    await _next(stream)
    assert await _next(stream) == ": keepalive\n\n"
    await stream.aclose()


async def test_close_ends_open_streams_and_refuses_new_ones() -> None:
    store = MetricsStore()
    streams = EventStreams(store, keepalive=60)
    stream = streams.stream()
    await _next(stream)
    pending = asyncio.ensure_future(_next(stream))
    await asyncio.sleep(0)
    streams.close()
    with pytest.raises(StopAsyncIteration):
        await pending
    with pytest.raises(StopAsyncIteration):
        await _next(streams.stream())
    assert streams.open_count == 0
