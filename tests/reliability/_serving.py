"""Run an app on the product's own ``ServerRunner`` (its uvicorn options, socket and limits), and time it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from getpatter.server.connections import ServerLimits
from getpatter.server.runner import ServerRunner


@contextlib.asynccontextmanager
async def product_server(app: Any, limits: ServerLimits | None = None) -> AsyncIterator[ServerRunner]:
    """``app`` served by ``ServerRunner`` on 127.0.0.1:<free port>; stopped on exit."""
    runner = ServerRunner(app, None, host="127.0.0.1", port=0, grace_s=2.0, limits=limits)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(asyncio.shield(runner.ready), 15)
    try:
        yield runner
    finally:
        await runner.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)


def keepalive_round_trips(port: int, path: str = "/health", count: int = 15) -> list[float]:
    """Milliseconds per GET on ONE keep-alive connection (blocking: run it in a thread)."""
    out: list[float] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("server closed the keep-alive connection")
                buffer += chunk
            head, _, body = buffer.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += sock.recv(65536)
            out.append((time.perf_counter() - started) * 1000)
    return out


async def health_latencies(base_url: str, count: int, gap_s: float = 0.05) -> list[float]:
    """Milliseconds of ``count`` fresh-connection GET /health requests spaced ``gap_s`` apart."""
    import httpx

    out: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = await client.get(base_url + "/health", headers={"Connection": "close"})
            response.raise_for_status()
            out.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(gap_s)
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)
