"""Request-body caps enforced while the body streams in, for every HTTP route of an app.

A route that calls ``await request.body()`` holds the whole body in memory before it can look at its size,
so four concurrent 200 MB posts cost the operator ~1 GB. This ASGI middleware answers ``413`` as soon as a
declared ``Content-Length`` is over the cap, and for bodies without one (chunked) as soon as the bytes
read so far pass it: the route never sees more than ``cap`` bytes.

Caps are per path prefix (longest prefix wins) with a default for everything else; the default is
``PATTER_MAX_BODY_BYTES`` (1 MiB) unless given.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from getpatter._ratelog import RateLimitedLog

log = logging.getLogger("getpatter.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def default_max_body_bytes(env: Mapping[str, str] | None = None) -> int:
    """``PATTER_MAX_BODY_BYTES`` (a positive integer), else 1 MiB."""
    raw = (os.environ if env is None else env).get("PATTER_MAX_BODY_BYTES", "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BODY_BYTES


class BodyTooLarge(Exception):
    """Raised from ``receive`` once the body passes its cap (caught by :class:`BodyLimitMiddleware`)."""


class BodyLimitMiddleware:
    """Pure ASGI middleware: ``413 Payload Too Large`` for bodies over the cap of their path."""

    def __init__(
        self, app: ASGIApp, caps: Mapping[str, int] | None = None, default: int | None = None
    ) -> None:
        self.app = app
        self.default = default if default is not None else default_max_body_bytes()
        #: Longest prefix first, so ``/webhooks/telnyx/`` beats ``/webhooks/``.
        self.caps = sorted((caps or {}).items(), key=lambda item: -len(item[0]))
        self._refused = RateLimitedLog(log, "request body over its cap refused with 413", interval_s=10.0)

    def cap_for(self, path: str) -> int:
        for prefix, cap in self.caps:
            if path.startswith(prefix):
                return cap
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(str(scope.get("path", "")))
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await self._refuse(scope, send, cap)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send, cap)

    @property
    def refused(self) -> int:
        return self._refused.count

    async def _refuse(self, scope: Scope, send: Send, cap: int) -> None:
        self._refused(f"{scope.get('method', '?')} {str(scope.get('path', ''))[:200]} over {cap} bytes")
        body = b"Payload Too Large"
        headers = [
            (b"content-type", b"text/plain"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    """The declared length; a malformed one counts as infinite (refused), a missing one as unknown."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else 1 << 62
    return None


__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimitMiddleware", "BodyTooLarge", "default_max_body_bytes"]
