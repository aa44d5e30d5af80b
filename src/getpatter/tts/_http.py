"""Shared plumbing for TTS vendors that stream audio over one HTTP POST.

Contract every HTTP TTS client gets from here:

* one lazily created :class:`httpx.AsyncClient` per provider instance, so consecutive ``synthesize`` calls
  reuse a kept-alive connection (TLS handshakes cost more than a short utterance);
* vendor refusals become getpatter errors: 401/403 -> :class:`AuthenticationError`, 429 ->
  :class:`RateLimitError` with ``retry_after``, 5xx and transport failures (refused, reset, timed out,
  truncated body) -> :class:`PatterConnectionError`, any other non-2xx -> :class:`PatterError` with code
  ``PROVIDER_ERROR``. The message carries the vendor's own explanation and never the API key;
* the audio body is yielded as it arrives, re-cut to whole samples, and closing the consuming generator
  (``aclose()`` or task cancellation) closes the HTTP stream so the vendor stops generating.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import httpx

from getpatter._http_status import error_for_status as _status_error
from getpatter._pool import pooled_client
from getpatter.errors import (
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
)

#: Longest vendor error text kept in an exception message.
_MAX_MESSAGE_CHARS: Final = 300
_REDACTED: Final = "***"


def resolve_api_key(api_key: str | None, *, owner: str, env_var: str) -> str:
    """Return ``api_key`` or the env var's value; raise a config error naming both when neither is set."""
    key = api_key if api_key else os.environ.get(env_var, "")
    if not key.strip():
        raise PatterConfigError(
            f"{owner}: no API key. Pass api_key=... or set the {env_var} environment variable."
        )
    return key.strip()


def normalize_base_url(base_url: str, *, owner: str) -> str:
    """Validate an http(s) origin/prefix and strip trailing slashes so paths join with exactly one ``/``."""
    if not base_url.startswith(("http://", "https://")):
        raise PatterConfigError(f"{owner}: base_url must start with http:// or https:// (got {base_url!r}).")
    return base_url.rstrip("/")


def _message_from_json(data: Any) -> str | None:
    """Find the human-readable part of the common vendor error shapes (OpenAI, FastAPI-style ``detail``)."""
    if isinstance(data, str):
        return data
    if isinstance(data, list):
        parts = [_message_from_json(item) for item in data]
        joined = "; ".join(p for p in parts if p)
        return joined or None
    if not isinstance(data, dict):
        return None
    for key in ("error", "detail"):
        if key in data:
            found = _message_from_json(data[key])
            if found:
                return found
    for key in ("message", "msg"):
        value = data.get(key)
        if isinstance(value, str) and value:
            status = data.get("status") or data.get("code")
            return f"{status}: {value}" if isinstance(status, str) and status else value
    status = data.get("status")
    return status if isinstance(status, str) else None


def extract_error_message(body: bytes) -> str:
    """Best-effort vendor explanation from an error body; falls back to the raw text, truncated."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        found = _message_from_json(json.loads(text)) if text else None
    except ValueError:
        found = None
    message = found if found else text
    return message[:_MAX_MESSAGE_CHARS] if message else "no error details"


def error_for_status(
    status: int, headers: httpx.Headers, body: bytes, *, vendor: str, secret: str
) -> PatterError:
    """Map a non-2xx vendor answer to the getpatter error a caller can act on."""
    message = extract_error_message(body)
    if secret:
        message = message.replace(secret, _REDACTED)
    text = f"{vendor}: HTTP {status}: {message}"
    return _status_error(status, text, headers, transient=(409,))


def _looks_like_error_body(content_type: str) -> bool:
    """A 2xx answer that is JSON or text is an error report, not audio (vendors send ``audio/*``)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    return ctype == "application/json" or ctype.startswith("text/")


class HttpAudioStreamer:
    """Owns one pooled HTTP client and turns a streamed POST into sample-aligned audio chunks."""

    def __init__(self, *, vendor: str, secret: str, timeout: float) -> None:
        if timeout <= 0:
            raise PatterConfigError(f"{vendor}: timeout must be > 0 seconds (got {timeout}).")
        self._vendor = vendor
        self._secret = secret
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"HttpAudioStreamer(vendor={self._vendor!r}, open={self._client is not None})"

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = pooled_client(timeout=self._timeout, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        """Close pooled connections; a later stream() transparently opens a new client."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def stream(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        json_body: Mapping[str, Any],
        params: Mapping[str, str] | None = None,
        sample_width: int = 1,
    ) -> AsyncIterator[bytes]:
        """POST ``json_body`` and yield the response body in chunks that hold whole samples only.

        A trailing partial sample at the very end of the body is dropped (it cannot be played).
        """
        client = self._get_client()
        carry = b""
        try:
            async with client.stream(
                "POST", url, headers=dict(headers), json=dict(json_body), params=params
            ) as resp:
                if resp.status_code >= 300:
                    body = await resp.aread()
                    raise error_for_status(
                        resp.status_code, resp.headers, body, vendor=self._vendor, secret=self._secret
                    )
                if _looks_like_error_body(resp.headers.get("content-type", "")):
                    body = await resp.aread()
                    raise PatterError(
                        f"{self._vendor}: expected audio, got "
                        f"{resp.headers.get('content-type')}: {extract_error_message(body)}",
                        code=ErrorCode.PROVIDER_ERROR,
                    )
                async for piece in resp.aiter_bytes():
                    data = carry + piece if carry else piece
                    usable = len(data) - len(data) % sample_width
                    carry = data[usable:]
                    if usable:
                        yield data[:usable]
        except httpx.TimeoutException as exc:
            raise PatterConnectionError(f"{self._vendor}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise PatterConnectionError(f"{self._vendor}: connection failed ({type(exc).__name__})") from exc
