"""Webhook tools resolve once, check every address and connect to the checked one (no DNS rebinding).

The hostile DNS here answers a public address to the first lookup and 127.0.0.1 to every later one, and
the system resolver is wired to the same hostile DNS, so any second lookup on the way to the socket would
reach the loopback endpoint. Connections are observed (and, for the "public" address, routed to a local
endpoint that plays the public host) at ``anyio.connect_tcp``, the call httpcore makes to open a socket.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import anyio
import httpx
import pytest

from getpatter.tools.ssrf import WebhookBlockedError
from getpatter.tools.webhook import WebhookCaller, WebhookToolError
from tests.fakes.server import running
from tests.fakes.stale_http import RawResponse, StaleHttpServer
from tests.fakes.webhook_tool import FakeWebhookTool

HOST = "hook.rebind.test"
PUBLIC = "93.184.216.34"


class HostileDns:
    """Public on the first lookup, loopback afterwards."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return [PUBLIC] if len(self.lookups) == 1 else ["127.0.0.1"]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """System DNS answers loopback for HOST (the rebinding answer); connects are recorded; a connect to
    PUBLIC is served by ``world["public_port"]`` on 127.0.0.1 when set, else refused."""
    state: dict[str, Any] = {"connects": [], "public_port": None}
    real_getaddrinfo = socket.getaddrinfo
    real_connect_tcp = anyio.connect_tcp

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in (HOST, HOST.encode()):
            host = "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)

    async def connect_tcp(remote_host: Any, remote_port: int, **kwargs: Any) -> Any:
        state["connects"].append((str(remote_host), remote_port))
        if str(remote_host) == PUBLIC:
            if state["public_port"] is None:
                raise ConnectionRefusedError(f"{PUBLIC} unreachable in this test")
            return await real_connect_tcp("127.0.0.1", state["public_port"], **kwargs)
        return await real_connect_tcp(remote_host, remote_port, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(anyio, "connect_tcp", connect_tcp)
    return state


async def _no_sleep(_: float) -> None:
    return None


async def test_the_environment_really_rebinds_for_a_plain_client(world: dict[str, Any]) -> None:
    """Control: a client that resolves the name itself lands on the loopback endpoint."""
    inner = FakeWebhookTool()
    async with running(inner.app) as srv, httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(f"http://{HOST}:{srv.port}/hook", json={})
    assert response.status_code == 200 and len(inner.requests) == 1


async def test_a_second_lookup_cannot_point_the_request_inside(world: dict[str, Any]) -> None:
    inner = FakeWebhookTool()
    dns = HostileDns()
    async with running(inner.app) as srv:
        caller = WebhookCaller(resolve=dns.resolve, sleep=_no_sleep)
        try:
            with pytest.raises((WebhookBlockedError, WebhookToolError)):
                await caller.call(f"http://{HOST}:{srv.port}/hook", "t", {}, {}, timeout_s=5)
        finally:
            await caller.aclose()
    assert inner.requests == []  # the loopback endpoint was never reached
    # Attempt 1 connected (only) to the checked public address; attempt 2's lookup said loopback: refused.
    assert world["connects"] == [(PUBLIC, srv.port)]
    assert dns.lookups == [HOST, HOST]


async def test_the_checked_address_is_used_with_the_original_host_header(world: dict[str, Any]) -> None:
    public = FakeWebhookTool()  # plays the public endpoint behind PUBLIC
    dns = HostileDns()
    async with running(public.app) as srv:
        world["public_port"] = srv.port
        caller = WebhookCaller(resolve=dns.resolve, sleep=_no_sleep)
        try:
            text = await caller.call(f"http://{HOST}:{srv.port}/hook", "t", {"x": 1}, {}, timeout_s=5)
        finally:
            await caller.aclose()
    assert text == '{"ok":true}'
    assert world["connects"] == [(PUBLIC, srv.port)] and dns.lookups == [HOST]
    assert public.requests[0].headers["host"] == f"{HOST}:{srv.port}"  # Host (and SNI) stay the name


class PublicDns:
    """Always the public address (no rebinding here: this test is about the stale-connection retry)."""

    async def resolve(self, host: str, port: int) -> list[str]:
        return [PUBLIC]


async def test_a_stale_connection_is_retried_once_and_the_retry_is_pinned_too(
    world: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The webhook client is a retrying pool (getpatter/_pool.py) built on the pinned backend: a request
    lost to a connection the server had closed is sent once more on a new connection, to the checked
    address again (never to what the system resolver says)."""
    caplog.set_level(logging.DEBUG, logger="getpatter.http")
    server = StaleHttpServer(lambda _request: RawResponse(body=b'{"ok":true}'), drop="reused")
    async with server.serving() as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        world["public_port"] = port
        caller = WebhookCaller(resolve=PublicDns().resolve, sleep=_no_sleep)
        try:
            first = await caller.call(f"http://{HOST}:{port}/hook", "t", {}, {}, timeout_s=5)
            second = await caller.call(f"http://{HOST}:{port}/hook", "t", {}, {}, timeout_s=5)
        finally:
            await caller.aclose()
    assert first == second == '{"ok":true}'
    assert server.requests_dropped == 1 and server.requests_answered == 2 and server.connections == 2
    assert world["connects"] == [(PUBLIC, port), (PUBLIC, port)]  # the retry's new connection is pinned
    assert sum("retrying on a new one" in r.getMessage() for r in caplog.records) == 1
