"""``serve(on_message="https://...")``: the reply comes from the user's HTTP endpoint (API.md A.1 row 12).

Each caller turn is one ``POST`` of the documented JSON ``{"text", "call_id", "caller", "callee", "history"}``
(exactly the event a callable ``on_message`` receives). The reply is plain text, a JSON string, or JSON
``{"text": "..."}``. The transport is the webhook tools' (:class:`~getpatter.tools.webhook.WebhookCaller`):
SSRF guard (public addresses only unless ``PATTER_ALLOW_PRIVATE_WEBHOOKS``), no redirects, up to 3 attempts
for connection errors, 5xx and 429, a timeout that is not retried. Here the deadline is 30 s and the body is
capped at 64 KB. A failure raises a :class:`~getpatter.errors.PatterError`: the pipeline then says its
LLM-error apology and the call goes on.

A new HTTP client per turn: there is no call-scoped place to close a shared one, and a turn is long enough
that the connection setup does not dominate.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from getpatter.errors import PatterConfigError
from getpatter.tools.webhook import WebhookCaller

TIMEOUT_S = 30.0
MAX_REPLY_BYTES = 64 * 1024


class RemoteMessageHandler:
    """An ``on_message`` callable that asks ``url`` for each reply."""

    def __init__(self, url: str, *, allow_private: bool = False) -> None:
        self.url = check_message_url(url, allow_private=allow_private)
        self._allow_private = allow_private

    async def __call__(self, event: dict[str, Any]) -> str:
        caller = WebhookCaller(allow_private=self._allow_private, max_response_bytes=MAX_REPLY_BYTES)
        try:
            text = await caller.post(
                self.url, event, timeout_s=TIMEOUT_S, label="on_message webhook", attempt_field=None
            )
        finally:
            await caller.aclose()
        return reply_text(text)

    def __repr__(self) -> str:
        return f"RemoteMessageHandler({urlsplit(self.url).netloc!r})"  # never the path: it may hold a token


def reply_text(body: str) -> str:
    """Plain text as is; a JSON string or ``{"text": ...}`` unwrapped."""
    stripped = body.strip()
    if stripped[:1] in ('"', "{"):
        try:
            value = json.loads(stripped)
        except ValueError:
            return body
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            text = value.get("text", "")
            return text if isinstance(text, str) else str(text)
    return body


def check_message_url(url: str, *, allow_private: bool) -> str:
    """An ``on_message`` URL must be ``https://host/...`` (``http`` only for local development)."""
    parts = urlsplit(url.strip())
    if parts.scheme in ("ws", "wss"):
        raise PatterConfigError(
            f"on_message={url!r}: streaming WebSocket replies are not supported in this build. Fix: an "
            "https:// endpoint that answers each turn's POST, or an async function"
        )
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PatterConfigError(
            f"on_message={url!r} is not an https:// URL. "
            "Fix: on_message='https://your.host/reply' or a function"
        )
    if parts.scheme == "http" and not allow_private:
        raise PatterConfigError(
            f"on_message={url!r} uses plain http: caller speech would cross the internet unencrypted. "
            "Fix: use https:// (plain http is allowed only with PATTER_ALLOW_PRIVATE_WEBHOOKS=1, for local "
            "development)"
        )
    return url.strip()


def resolve_on_message(on_message: Any, *, allow_private: bool) -> Any:
    """serve()'s ``on_message`` as the call layer wants it: a URL becomes a :class:`RemoteMessageHandler`."""
    if isinstance(on_message, str):
        return RemoteMessageHandler(on_message, allow_private=allow_private)
    return on_message
