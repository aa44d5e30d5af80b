"""Run an ASGI app (FastAPI/Starlette, HTTP and WebSocket) on 127.0.0.1 on an ephemeral port.

async with running(app) as srv:
    httpx.get(srv.http_url + "/health")
    websockets.connect(srv.ws_url + "/ws")
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass(frozen=True)
class Running:
    host: str
    port: int

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"


class _Server(uvicorn.Server):
    """No signal capture: the test process owns its signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def running(app: Any, *, ws_max_size: int = 16 * 1024 * 1024) -> AsyncIterator[Running]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws_max_size=ws_max_size,
        ws_ping_interval=None,
        # Vendors keep idle connections longer than the SDK's pools (60 s); uvicorn's default 5 s would
        # close pooled connections under a reused request (a ReadError no real vendor produces).
        timeout_keep_alive=75,
        proxy_headers=False,  # like the product's runner: the peer address is the client address
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield Running("127.0.0.1", port)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
        sock.close()
