"""Webhook tools: run a tool by POSTing its arguments to the user's HTTP endpoint.

Contract (API.md A.1 row 19):

* request: ``POST`` JSON ``{"tool", "arguments", "call_id", "caller", "callee", "attempt"}`` (``attempt``
  counts from 1, so an endpoint can tell a retry from a new call and de-duplicate side effects);
* each attempt has its own deadline (the tool's ``timeout_s``, default 10 s) covering DNS, connect, upload and
  the whole download;
* up to 3 attempts for connection errors and HTTP 5xx/429, waiting 0.5 s then 1 s, or the server's
  ``Retry-After`` (capped at 5 s). A timeout is *not* retried: the endpoint may still be working, and a
  phone caller should not wait 30 s;
* the response body is read as a stream and refused beyond 1 MB; a JSON body comes back as compact JSON
  text, anything else as text. Redirects are not followed (they could bounce into the private network).

Failures raise :class:`WebhookToolError`; the executor turns it into the model's error payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from getpatter._pool import ENDPOINT_KEEPALIVE_EXPIRY_S, pooled_client
from getpatter._version import __version__
from getpatter.errors import ErrorCode, PatterError
from getpatter.tools._safe_transport import PinnedBackend
from getpatter.tools.ssrf import Resolver, WebhookResolveError, check_webhook_url

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
BACKOFF_S = (0.5, 1.0)
MAX_RETRY_AFTER_S = 5.0
MAX_RESPONSE_BYTES = 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}

Sleep = Callable[[float], Awaitable[None]]


class WebhookToolError(PatterError):
    """The webhook tool failed for good (after retries where they apply)."""

    default_code = ErrorCode.PROVIDER_ERROR


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None`` if absent/invalid."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _decode(body: bytes, content_type: str) -> str:
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type.lower():
        try:
            return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            return text
    return text


class WebhookCaller:
    """Sends webhook tool requests for one call; owns one shared ``httpx.AsyncClient`` (lazily created).

    ``sleep`` is injectable so tests can observe back-off without waiting; ``resolve`` is the DNS lookup
    used by the SSRF guard.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        sleep: Sleep | None = None,
        resolve: Resolver | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._allow_private = allow_private
        self._sleep: Sleep = sleep or asyncio.sleep
        self._resolve = resolve
        self._max_bytes = max_response_bytes
        self._client: httpx.AsyncClient | None = None
        self._pins = PinnedBackend(pinning=not allow_private)
        self._closed = False

    def _http(self) -> httpx.AsyncClient:
        if self._closed:
            raise WebhookToolError("webhook client is closed (the call has ended)")
        if self._client is None:
            # trust_env=False: an ambient proxy would make the SSRF check meaningless. Both pools of the
            # client connect only to the addresses the check resolved (no second lookup: no DNS
            # rebinding), the stale-connection retry's fresh connection included.
            self._client = pooled_client(
                keepalive_expiry_s=ENDPOINT_KEEPALIVE_EXPIRY_S,
                make_transport=self._pins.transport,
                follow_redirects=False,
                trust_env=False,
                headers={"user-agent": f"getpatter/{__version__}"},
            )
        return self._client

    async def aclose(self) -> None:
        """Close the shared client; later calls fail with :class:`WebhookToolError`."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def call(
        self,
        url: str,
        tool_name: str,
        arguments: Mapping[str, Any],
        context: Mapping[str, Any],
        *,
        timeout_s: float,
    ) -> str:
        """POST the tool call, retrying as the module docstring says; return the text for the model."""
        payload: dict[str, Any] = {
            "tool": tool_name,
            "arguments": dict(arguments),
            "call_id": context.get("call_id", ""),
            "caller": context.get("caller", ""),
            "callee": context.get("callee", ""),
        }
        return await self.post(url, payload, timeout_s=timeout_s, label=f"webhook tool {tool_name!r}")

    async def post(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        timeout_s: float,
        label: str,
        attempt_field: str | None = "attempt",
    ) -> str:
        """POST ``payload`` as JSON with the SSRF guard, deadline, retries and size cap of the module
        docstring; return the response text (compact JSON for a JSON body). ``attempt_field`` names the
        1-based attempt counter added to the payload (``None``: send ``payload`` unchanged)."""
        last_error = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            body = dict(payload) if attempt_field is None else {**payload, attempt_field: attempt}
            try:
                return await self._attempt(url, body, timeout_s)
            except _Retryable as exc:
                last_error = str(exc)
                if attempt == MAX_ATTEMPTS:
                    break
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S)) - 1]
                if exc.retry_after is not None:
                    delay = min(exc.retry_after, MAX_RETRY_AFTER_S)
                logger.info("%s attempt %d failed (%s); retrying in %.2fs", label, attempt, exc, delay)
                await self._sleep(delay)
        raise WebhookToolError(f"webhook failed after {MAX_ATTEMPTS} attempts: {last_error}")

    async def _attempt(self, url: str, payload: dict[str, Any], timeout_s: float) -> str:
        body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        try:
            async with asyncio.timeout(timeout_s):  # the deadline covers DNS, connect, upload and download
                try:
                    checked = await check_webhook_url(
                        url, allow_private=self._allow_private, resolve=self._resolve
                    )
                except WebhookResolveError as exc:
                    raise _Retryable(str(exc)) from None
                if not self._allow_private:
                    target = httpx.URL(url)
                    host, port = target.raw_host.decode("ascii"), target.port or _DEFAULT_PORTS[target.scheme]
                    self._pins.pin(host, port, checked)
                return await self._post(url, body, timeout_s)
        except (TimeoutError, httpx.TimeoutException):  # only our deadline or httpx's raise these here
            raise WebhookToolError(f"webhook timed out after {timeout_s:g}s (not retried)") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Retryable(f"connection error: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise WebhookToolError(f"webhook request failed: {type(exc).__name__}") from None

    async def _post(self, url: str, body: bytes, timeout_s: float) -> str:
        request = self._http().build_request(
            "POST",
            url,
            content=body,
            headers={"content-type": "application/json"},
            timeout=httpx.Timeout(timeout_s),
        )
        response = await self._http().send(request, stream=True)
        try:
            status = response.status_code
            if status == 429 or status >= 500:
                raise _Retryable(f"HTTP {status}", retry_after_seconds(response.headers.get("retry-after")))
            if not 200 <= status < 300:
                raise WebhookToolError(f"webhook answered HTTP {status}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise WebhookToolError(f"webhook response too large ({declared} bytes > {self._max_bytes})")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise WebhookToolError(f"webhook response too large (more than {self._max_bytes} bytes)")
                chunks.append(chunk)
            return _decode(b"".join(chunks), response.headers.get("content-type", ""))
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await response.aclose()


__all__ = [
    "BACKOFF_S",
    "MAX_ATTEMPTS",
    "MAX_RESPONSE_BYTES",
    "MAX_RETRY_AFTER_S",
    "Sleep",
    "WebhookCaller",
    "WebhookToolError",
    "retry_after_seconds",
]
