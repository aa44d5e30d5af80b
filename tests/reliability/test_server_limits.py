"""Attacks 4 and 7 of issue 18: idle-connection floods and the 44 ms Nagle delay on keep-alive responses.

Figures (before the fix): 1,100 idle TCP connections exhausted a 1024-descriptor process; every keep-alive
response took ~44 ms (Nagle + delayed ACK) on the pre-bound socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import httpx
import pytest
from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from websockets.asyncio.client import connect

from getpatter.server.connections import ServerLimits
from tests.reliability._serving import keepalive_round_trips, median, product_server
from tests.reliability._support import until


def _health_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.receive_text()  # hold the socket open until the client closes it

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app


async def test_keepalive_round_trip_is_not_delayed_by_nagle() -> None:
    """Median over several keep-alive requests: ~0.5 ms with TCP_NODELAY, ~44 ms without."""
    async with product_server(_health_app()) as runner:
        times = await asyncio.to_thread(keepalive_round_trips, runner.port, "/health", 15)
    print(f"\nkeep-alive round trip: median {median(times[1:]):.2f} ms over {len(times) - 1} requests")
    assert median(times[1:]) < 10.0, f"keep-alive round trips (ms): {[round(t, 1) for t in times]}"


async def test_media_sockets_get_tcp_nodelay_too() -> None:
    """WebSockets start as HTTP upgrades on the same accepted connection: it keeps TCP_NODELAY."""
    async with product_server(_health_app()) as runner:
        server = runner._server
        assert server is not None
        async with connect(f"ws://127.0.0.1:{runner.port}/ws", open_timeout=10) as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            sockets = [
                p.transport.get_extra_info("socket")
                for p in server.server_state.connections
                if getattr(p, "transport", None) is not None
            ]
            assert sockets, "the upgraded connection is tracked"
            for sock in sockets:
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


async def test_idle_connection_flood_cannot_lock_out_a_client(caplog: pytest.LogCaptureFixture) -> None:
    """300 connections that never send a byte against a 40-connection cap: the server evicts idle ones,
    so /health still answers and the server never holds more than its cap."""
    caplog.set_level(logging.WARNING, "getpatter.server")
    limits = ServerLimits(max_connections=40, header_timeout_s=30.0)
    idle: list[socket.socket] = []
    async with product_server(_health_app(), limits) as runner:
        server = runner._server
        assert server is not None
        try:
            for _ in range(300):
                sock = socket.socket()
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    sock.connect(("127.0.0.1", runner.port))
                idle.append(sock)
                await asyncio.sleep(0)
            await until(lambda: server.server_state.connections.__len__() >= 40, timeout=20)
            await asyncio.sleep(0.3)
            print(
                f"\nidle flood: 300 connections, server holds {len(server.server_state.connections)} (cap 40)"
            )
            assert len(server.server_state.connections) <= 40
            async with httpx.AsyncClient(timeout=20) as client:
                for _ in range(5):
                    response = await client.get(f"http://127.0.0.1:{runner.port}/health")
                    assert response.status_code == 200
                    assert len(server.server_state.connections) <= 41
        finally:
            for sock in idle:
                sock.close()
    warnings = [r for r in caplog.records if "connection cap reached" in r.getMessage()]
    assert 1 <= len(warnings) <= 3, "the cap warning is rate-limited, not one line per connection"


async def test_a_connection_that_never_finishes_its_request_head_is_closed() -> None:
    limits = ServerLimits(header_timeout_s=0.5)
    async with product_server(_health_app(), limits) as runner:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # slowloris: the head never ends
        await writer.drain()
        closed = await asyncio.wait_for(reader.read(), 20)  # EOF once the server closes it
        assert closed == b""
        writer.close()


async def test_an_unfinished_request_head_larger_than_the_cap_is_refused() -> None:
    """The head is buffered only up to ``max_header_bytes``: a longer unfinished one gets 400 and a close."""
    async with product_server(_health_app(), ServerLimits(max_header_bytes=4096)) as runner:
        reader, writer = await asyncio.open_connection("127.0.0.1", runner.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 20000)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
        writer.close()


def test_server_limits_read_the_environment() -> None:
    limits = ServerLimits.from_env(
        {
            "PATTER_MAX_CONNECTIONS": "77",
            "PATTER_HEADER_TIMEOUT_S": "3",
            "PATTER_KEEPALIVE_TIMEOUT_S": "9",
            "PATTER_MAX_HEADER_BYTES": "8192",
        }
    )
    assert (limits.connection_cap, limits.header_timeout_s, limits.keepalive_timeout_s) == (77, 3.0, 9.0)
    options = limits.uvicorn_options()
    assert options["timeout_keep_alive"] == 9 and options["h11_max_incomplete_event_size"] == 8192
    assert options["limit_concurrency"] == 78
    garbage = ServerLimits.from_env({"PATTER_MAX_CONNECTIONS": "lots", "PATTER_HEADER_TIMEOUT_S": "-1"})
    assert garbage.header_timeout_s == 10.0 and garbage.connection_cap >= 32
