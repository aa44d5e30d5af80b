"""The SDK's fire-and-forget post to a standalone dashboard."""

from __future__ import annotations

import socket
from typing import Any

from fastapi import FastAPI, Request

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import CallEnded, CallStarted
from getpatter.dashboard.notify import DashboardNotifier, post_ingest
from getpatter.metrics.collector import MetricsCollector
from getpatter.settings import Settings
from tests.fakes.server import running


def receiver() -> tuple[FastAPI, list[tuple[dict[str, Any], str]]]:
    seen: list[tuple[dict[str, Any], str]] = []
    app = FastAPI()

    @app.post("/api/dashboard/ingest")
    async def ingest(request: Request) -> dict[str, bool]:
        seen.append((await request.json(), request.headers.get("authorization", "")))
        return {"ok": True}

    return app, seen


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_post_ingest_never_raises_when_nobody_listens() -> None:
    assert await post_ingest({"call_id": "c"}, port=closed_port()) is False


async def test_observer_posts_start_and_end() -> None:
    app, seen = receiver()
    async with running(app) as srv:
        notifier = DashboardNotifier(port=srv.port, settings=Settings(), token="tok")
        bus = EventBus()
        ctx = CallContext(
            call_id="CA1", caller="+1555", callee="+1666", direction="inbound", carrier="twilio"
        )
        notifier.observer(bus, ctx)
        MetricsCollector().observer(bus, ctx)  # publishes the CallSummary the end is posted from
        bus.emit(CallStarted(call_id="CA1", caller="+1555", callee="+1666", direction="inbound",
                             carrier="twilio", provider_mode="pipeline"))  # fmt: skip
        await notifier.drain()
        bus.emit(CallEnded(call_id="CA1", reason="hangup", transcript=({"role": "user", "text": "hi"},)))
        await notifier.drain()
    start, end = seen[0][0], seen[1][0]
    assert seen[0][1] == "Bearer tok"
    assert start["call_id"] == "CA1" and start["caller"] == "+1555" and "ended_at" not in start
    assert end["call_id"] == "CA1" and end["status"] == "completed" and end["ended_at"] > 0
    assert end["transcript"] == [{"role": "user", "text": "hi", "timestamp": None}]


async def test_disabled_notifier_posts_nothing() -> None:
    app, seen = receiver()
    async with running(app) as srv:
        notifier = DashboardNotifier(port=srv.port, settings=Settings(dashboard_notify=False))
        assert notifier.enabled is False
        notifier.send({"call_id": "c"})
        bus = EventBus()
        notifier.observer(
            bus, CallContext(call_id="c", caller="", callee="", direction="inbound", carrier="x")
        )
        bus.emit(
            CallStarted(call_id="c", caller="", callee="", direction="inbound", carrier="x", provider_mode="")
        )
        await notifier.drain()
    assert seen == []


def test_notify_follows_the_environment() -> None:
    assert DashboardNotifier(settings=Settings.from_env({"PATTER_DASHBOARD_NOTIFY": "Off"})).enabled is False
    assert DashboardNotifier(settings=Settings.from_env({})).enabled is True
