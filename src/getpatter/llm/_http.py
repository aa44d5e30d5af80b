"""HTTP status and transport failures of LLM vendors, mapped onto getpatter's error hierarchy.

The status mapping itself is :mod:`getpatter._http_status` (shared with TTS, STT and carriers). Contract
(shared by every HTTP LLM client): 401/403 -> :class:`AuthenticationError`; 429 ->
:class:`RateLimitError` with ``retry_after`` seconds from ``retry-after-ms``/``retry-after``; 408, 5xx and
network failures -> :class:`PatterConnectionError` (the retryable family); any other 4xx -> plain
:class:`PatterError` with ``PROVIDER_ERROR`` (a request the vendor will never accept, do not retry).
Messages name the vendor, the status and the vendor's own error text; every secret passed in ``secrets``
is masked, because some vendors echo (parts of) the credential back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from getpatter._http_status import error_for_status
from getpatter._pool import pooled_client
from getpatter.errors import (
    ErrorCode,
    PatterConnectionError,
    PatterError,
)

_MAX_DETAIL = 300


class PooledHTTPClient:
    """For HTTP LLM clients: ``_http()`` is one pooled client per instance and event loop, created on first
    use (a client is bound to the loop that opened its sockets, so a new loop gets a new pool), with
    ``timeout`` seconds for connecting and each read; ``close()`` releases it."""

    timeout: float
    _client: httpx.AsyncClient | None = None
    _client_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client.is_closed or self._client_loop is not loop:
            self._client = pooled_client(timeout=httpx.Timeout(self.timeout))
            self._client_loop = loop
        return self._client

    async def close(self) -> None:
        """Close pooled connections; a later ``stream()`` transparently opens a new pool."""
        client, loop = self._client, self._client_loop
        self._client, self._client_loop = None, None
        # A pool opened in another (usually finished) event loop cannot be closed from this one; drop it.
        if client is not None and loop is asyncio.get_running_loop():
            await client.aclose()


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each non-empty secret with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def vendor_message(body: bytes) -> str:
    """The human-readable error text from a vendor error body, whatever its common shape.

    Handles ``{"error": {"message": ...}}`` (OpenAI and compatibles), ``{"error": "..."}``,
    ``{"message": ...}`` / ``{"detail": ...}`` and ``{"type":"error","error":{...}}`` (Anthropic); falls back
    to the raw text, shortened.
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return _shorten(text)
    if isinstance(doc, list) and doc:
        doc = doc[0]
    if isinstance(doc, dict):
        err = doc.get("error", doc)
        if isinstance(err, str):
            return _shorten(err)
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                value = err.get(key)
                if isinstance(value, str) and value:
                    return _shorten(value)
    return _shorten(text)


def status_error(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Iterable[str | None] = (),
) -> PatterError:
    """The exception for a non-2xx answer (see the module docstring for the mapping)."""
    detail = redact(vendor_message(body), secrets)
    message = f"{provider} returned HTTP {status}" + (f": {detail}" if detail else "")
    return error_for_status(status, message, headers)


def transport_error(
    provider: str, exc: httpx.HTTPError, *, secrets: Iterable[str | None] = ()
) -> PatterConnectionError:
    """The exception for a request that failed below HTTP: DNS, connect, TLS, timeout, dropped body."""
    kind = type(exc).__name__
    detail = redact(str(exc), secrets) or kind
    if isinstance(exc, httpx.TimeoutException):
        return PatterConnectionError(f"{provider} timed out ({kind}): {detail}", code=ErrorCode.TIMEOUT)
    return PatterConnectionError(f"{provider} connection failed ({kind}): {detail}")


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
