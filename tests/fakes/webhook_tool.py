"""A scriptable webhook-tool endpoint: records every POST and answers each attempt from a script.

    fake = FakeWebhookTool([Step(status=500), Step(json={"ok": True})])
    async with running(fake.app) as srv:
        ...  # POST srv.http_url + "/hook"
    fake.attempts  # -> [1, 2]

Each request consumes the next :class:`Step`; once the script is exhausted the last step repeats (an
empty script answers ``{"ok": true}``). A step may delay its answer (released early by
:meth:`FakeWebhookTool.release` so server shutdown never waits), return JSON or text, set headers
(``Retry-After``), or stream an oversized body with or without ``Content-Length``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Step:
    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    #: stream this many filler bytes (chunked, no Content-Length) instead of json/text
    stream_bytes: int = 0
    #: send this many filler bytes in one body with a Content-Length header
    sized_bytes: int = 0


@dataclass(frozen=True)
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class FakeWebhookTool:
    def __init__(self, script: Sequence[Step] = ()) -> None:
        self.script = list(script)
        self.requests: list[Recorded] = []
        self._release = asyncio.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])

    @property
    def attempts(self) -> list[int]:
        return [int(r.body.get("attempt", 0)) for r in self.requests]

    def release(self) -> None:
        """End every pending delay now (call before stopping the server)."""
        self._release.set()

    def _next_step(self) -> Step:
        index = len(self.requests) - 1
        if not self.script:
            return Step(json={"ok": True})
        return self.script[min(index, len(self.script) - 1)]

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        self.requests.append(Recorded("/" + request.path_params["path"], body, dict(request.headers)))
        step = self._next_step()
        if step.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), timeout=step.delay_s)
        if step.stream_bytes:
            return StreamingResponse(
                _filler(step.stream_bytes), status_code=step.status, headers=step.headers
            )
        if step.sized_bytes:
            return Response(b"x" * step.sized_bytes, status_code=step.status, headers=step.headers)
        if step.text is not None:
            return Response(step.text, status_code=step.status, headers=step.headers, media_type="text/plain")
        payload = json.dumps(step.json if step.json is not None else {"ok": True}).encode()
        return Response(payload, status_code=step.status, headers=step.headers, media_type="application/json")


async def _filler(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        size = min(_CHUNK, total - sent)
        sent += size
        yield b"x" * size
        await asyncio.sleep(0)
