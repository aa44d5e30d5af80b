"""Shared plumbing for TTS vendors that stream audio over a WebSocket (ElevenLabs stream-input, Cartesia).

Contract every WebSocket TTS client gets from here:

* :func:`ws_endpoint` derives the WebSocket origin from ``base_url`` (``http->ws``, ``https->wss``) unless the
  vendor uses a separate ``ws_base_url``, so tests can point both at one fake on 127.0.0.1;
* :func:`connect_ws` maps an HTTP refusal of the upgrade exactly like :mod:`getpatter.tts._http` maps an
  HTTP answer (401/403 -> AuthenticationError, 429 -> RateLimitError, 5xx -> PatterConnectionError) and
  every transport failure or open timeout to :class:`PatterConnectionError`, never echoing the API key;
* :class:`SampleCarry` re-cuts decoded audio to whole samples across chunks.
"""

from __future__ import annotations

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from getpatter._urls import endpoint
from getpatter._wslog import VENDOR_WS_LOGGER
from getpatter.errors import PatterConnectionError, PatterError
from getpatter.tts._http import error_for_status


def ws_endpoint(base_url: str, ws_base_url: str | None, path: str, *, owner: str) -> str:
    """``ws_base_url`` (or ``base_url`` scheme-swapped) + ``path``; any path prefix of the origin is kept."""
    source = ws_base_url if ws_base_url is not None else base_url
    name = "ws_base_url" if ws_base_url is not None else "base_url"
    bad_url = f"{owner}: {name} must be an http(s):// or ws(s):// URL (got {source!r})."
    return endpoint(source, path, scheme="ws", bad_url=bad_url)


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


async def connect_ws(
    url: str,
    *,
    headers: dict[str, str],
    vendor: str,
    secret: str,
    open_timeout: float,
    max_size: int,
    close_timeout: float = 2.0,
) -> ClientConnection:
    """Open the socket (keepalive pings off: vendors close idle sockets on their own schedule)."""
    try:
        return await connect(
            url,
            logger=VENDOR_WS_LOGGER,
            additional_headers=headers,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            max_size=max_size,
            ping_interval=None,
        )
    except InvalidStatus as exc:
        response = exc.response
        raise refusal_error(
            response.status_code,
            dict(response.headers.raw_items()),
            bytes(response.body or b""),
            vendor,
            secret,
        ) from None
    except TimeoutError:
        raise PatterConnectionError(f"{vendor}: WebSocket did not open within {open_timeout} s.") from None
    except (OSError, InvalidHandshake, InvalidURI) as exc:
        reason = redact(str(exc), secret)
        raise PatterConnectionError(f"{vendor}: could not open the WebSocket ({reason}).") from None


def refusal_error(status: int, headers: dict[str, str], body: bytes, vendor: str, secret: str) -> PatterError:
    """The upgrade was answered with an HTTP status: same mapping as an HTTP TTS answer."""
    return error_for_status(status, httpx.Headers(headers), body, vendor=vendor, secret=secret)


class SampleCarry:
    """Holds a trailing partial sample so every emitted chunk contains whole samples only."""

    __slots__ = ("_carry", "_width")

    def __init__(self, sample_width: int) -> None:
        self._width = sample_width
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        if self._width == 1:
            return data
        data = self._carry + data if self._carry else data
        usable = len(data) - len(data) % self._width
        self._carry = data[usable:]
        return data[:usable]
