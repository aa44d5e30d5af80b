"""The SDK's fire-and-forget post to a standalone dashboard."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from getpatter import Patter, PatterConfigError
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import AgentUtterance, CallEnded, CallStarted, UserTranscript
from getpatter.dashboard.notify import DashboardNotifier, NotifyTarget, post_ingest, resolve_notify_target
from getpatter.dashboard.standalone import create_dashboard_app
from getpatter.dashboard.store import MetricsStore
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


# -- where to post -----------------------------------------------------------------------------------
def test_the_target_comes_from_the_parameter_or_the_environment() -> None:
    default = resolve_notify_target(None, {})
    assert default == NotifyTarget("http://127.0.0.1:8000/api/dashboard/ingest")
    assert resolve_notify_target(None, {"PATTER_DASHBOARD_NOTIFY": "yes"}) == default
    for off in ("0", "false", "No", "OFF"):
        assert resolve_notify_target(None, {"PATTER_DASHBOARD_NOTIFY": off}) is None
    assert resolve_notify_target(None, {"PATTER_DASHBOARD_NOTIFY": "8123"}) == NotifyTarget(
        "http://127.0.0.1:8123/api/dashboard/ingest"
    )
    printed = "http://127.0.0.1:8123/?token=s3cret"  # what `patter dashboard` prints
    target = resolve_notify_target(None, {"PATTER_DASHBOARD_NOTIFY": printed})
    assert target == NotifyTarget("http://127.0.0.1:8123/api/dashboard/ingest", "s3cret")
    assert "s3cret" not in repr(target)
    assert resolve_notify_target(printed, {"PATTER_DASHBOARD_NOTIFY": "0"}) == target  # the parameter wins
    assert resolve_notify_target(False, {}) is None and resolve_notify_target(True, {"X": "1"}) == default
    assert resolve_notify_target(9000) == NotifyTarget("http://127.0.0.1:9000/api/dashboard/ingest")
    assert resolve_notify_target("https://board.example.com/?token=t") == NotifyTarget(
        "https://board.example.com/api/dashboard/ingest", "t"
    )


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("http://board.example.com:8000/", "unencrypted"),
        ("ftp://127.0.0.1/", "not a dashboard URL"),
        (0, "1-65535"),
        (70000, "1-65535"),
        (1.5, "dashboard_notify must be"),
    ],
)
def test_a_bad_parameter_is_refused_at_construction(value: Any, match: str) -> None:
    with pytest.raises(PatterConfigError, match=match):
        Patter(dashboard_notify=value)


def test_a_bad_environment_value_turns_notify_off_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="getpatter.dashboard"):
        assert resolve_notify_target(None, {"PATTER_DASHBOARD_NOTIFY": "http://10.0.0.5:8000"}) is None
    assert "unencrypted" in caplog.text


# -- how it posts ------------------------------------------------------------------------------------
async def test_send_never_blocks_and_the_queue_is_bounded() -> None:
    notifier = DashboardNotifier(port=closed_port(), settings=Settings(), queue_size=2, retries=0)
    for i in range(5):
        notifier.send({"call_id": f"c{i}"})  # synchronous: nothing is awaited
    assert notifier.dropped == 3
    await notifier.aclose(timeout=5)
    assert notifier.delivered == 0 and notifier.dropped == 5  # nobody listens: given up, no exception


async def test_server_errors_are_retried_with_backoff_in_order() -> None:
    answers = [503, 502, 200, 200]
    seen: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/api/dashboard/ingest")
    async def ingest(request: Request) -> Response:
        seen.append(await request.json())
        return Response(status_code=answers.pop(0))

    async with running(app) as srv:
        notifier = DashboardNotifier(port=srv.port, settings=Settings(), backoff_s=0.01)
        notifier.send({"call_id": "first"})
        notifier.send({"call_id": "second"})
        await notifier.drain(timeout=10)
        await notifier.aclose()
    assert [p["call_id"] for p in seen] == ["first", "first", "first", "second"]
    assert notifier.delivered == 2 and notifier.dropped == 0


async def test_a_wrong_token_turns_the_notifier_off_without_retrying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    board = MetricsStore()
    async with running(create_dashboard_app(board, token="right")) as srv:
        target = NotifyTarget(f"http://127.0.0.1:{srv.port}/api/dashboard/ingest", "wrong")
        notifier = DashboardNotifier(target, settings=Settings(), backoff_s=5.0)
        with caplog.at_level(logging.WARNING, logger="getpatter.dashboard"):
            notifier.send({"call_id": "c1", "caller": "+1"})
            await notifier.drain(timeout=2)  # no 5 s backoff: a 401 is not retried
        notifier.send({"call_id": "c2"})
        await notifier.aclose()
    assert notifier.enabled is False and notifier.delivered == 0
    assert "rejected the token" in caplog.text and "wrong" not in caplog.text
    assert board.get_active_calls() == []


async def test_live_lines_and_status_updates_are_ingested() -> None:
    board = MetricsStore()
    async with running(create_dashboard_app(board)) as srv:
        notifier = DashboardNotifier(port=srv.port, settings=Settings())
        bus, ctx = (
            EventBus(),
            CallContext(call_id="CA1", caller="+1", callee="+2", direction="outbound", carrier="twilio"),
        )
        notifier.observer(bus, ctx)
        bus.emit(CallStarted(call_id="CA1", caller="+1", callee="+2", direction="outbound",
                             carrier="twilio", provider_mode="pipeline"))  # fmt: skip
        bus.emit(UserTranscript(call_id="CA1", text="hello?"))
        bus.emit(AgentUtterance(call_id="CA1", text="Hi, it's Acme."))
        await notifier.drain()
        live = board.get_active("CA1")
        assert live is not None
        assert [(t["role"], t["text"]) for t in live["transcript"]] == [
            ("user", "hello?"),
            ("assistant", "Hi, it's Acme."),
        ]
        notifier.send({"event": "call_status", "call_id": "CA1", "answered_by": "machine"})
        await notifier.drain()
        await notifier.aclose()
    assert board.get_active("CA1")["answered_by"] == "machine"  # type: ignore[index]
