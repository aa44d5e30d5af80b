"""A plain HTTP/1.1 server on 127.0.0.1 whose keep-alive connections go stale the way real servers' do.

Real servers close idle keep-alive connections on their own schedule (uvicorn after 5 s, load balancers
after 60 s), and a request can be written onto a connection at the very moment it is being closed: the
server reads it (or not) and closes without a byte of answer. This server makes those moments happen on
purpose, so clients can be tested against them deterministically:

* ``drop="reused"``: each connection answers its first request; the next request read on it is dropped
  (connection closed, no response) — the stale connection a client must retry on a new one;
* ``drop="first"``: every connection is closed right after its first request is read — a failure of a new
  connection, which a client must not retry;
* ``drop="mid_response"``: the second request on a connection gets its status line, headers and part of the
  body, then the connection closes — the server had started answering, a client must not retry;
* ``idle_close_s``: a connection idle that long is closed by the server (like uvicorn's keep-alive timeout).

``answer(request)`` builds each response; counters record what the server saw.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal

DropMode = Literal["none", "reused", "first", "mid_response"]


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class RawResponse:
    status: int = 200
    content_type: str = "application/json"
    body: bytes = b"{}"


@dataclass
class StaleHttpServer:
    answer: Callable[[RawRequest], RawResponse]
    drop: DropMode = "none"
    idle_close_s: float | None = None
    connections: int = 0
    requests_read: int = 0
    requests_answered: int = 0
    requests_dropped: int = 0
    paths: list[str] = field(default_factory=list)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        served = 0
        try:
            while True:
                try:
                    request = await asyncio.wait_for(_read_request(reader), self.idle_close_s)
                except TimeoutError:
                    return  # idle past the keep-alive timeout: close, as servers do
                if request is None:
                    return
                self.requests_read += 1
                self.paths.append(request.path)
                served += 1
                if (self.drop == "first" and served == 1) or (self.drop == "reused" and served == 2):
                    self.requests_dropped += 1
                    return
                response = self.answer(request)
                head = (
                    f"HTTP/1.1 {response.status} X\r\ncontent-type: {response.content_type}\r\n"
                    f"content-length: {len(response.body)}\r\n\r\n"
                ).encode()
                if self.drop == "mid_response" and served == 2:
                    self.requests_dropped += 1
                    writer.write(head + response.body[: max(1, len(response.body) // 3)])
                    await writer.drain()
                    return
                writer.write(head + response.body)
                await writer.drain()
                self.requests_answered += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Listen on an ephemeral loopback port; yields the base URL."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.close()
            handlers = list(self._handlers)
            for handler in handlers:
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawRequest(method, path, headers, body)
