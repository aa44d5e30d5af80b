"""WebSocket-client plumbing shared by every streaming STT vendor (Deepgram, AssemblyAI, Cartesia, Soniox,
Speechmatics): a vendor module holds only its options, handshake query and message mapping.

The contract, in one place:

* ``base_url`` -> WebSocket URL by scheme swap plus the vendor's fixed path (protocols/stt.md).
* Handshake refusals: 401/403 -> :class:`AuthenticationError`, 429 -> :class:`RateLimitError` with
  ``retry_after``, anything else / unreachable -> :class:`PatterConnectionError`; the key never appears.
* Audio goes out as binary frames in ``input_format``, untouched, coalesced to at least ``min_frame_ms`` and
  cut to at most ``max_frame_ms``; ``audio_seconds`` counts what the caller handed in.
* A reader task turns server text frames into events via the vendor's ``_handle``. A vendor error, or a
  close we did not ask for, ends the iteration with that error (raised once), and later ``send`` /
  ``finalize`` raise it too. ``close()`` sends the vendor's end-of-stream message, lets the reader drain
  the last results for up to ``close_timeout_s``, then drops the socket; it is idempotent.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import Response

from getpatter._channel import EventChannel
from getpatter._channel import StreamEnd as _End
from getpatter._http_status import retry_after_seconds
from getpatter._urls import endpoint
from getpatter._wslog import VENDOR_WS_LOGGER
from getpatter.audio.format import AudioFormat
from getpatter.errors import (
    AuthenticationError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.llm._http import redact, vendor_message
from getpatter.stt.base import STTEvent, STTStream

__all__ = ["WsSTTStream", "classify_failure", "connect_ws", "parse_json", "ws_url"]

log = logging.getLogger(__name__)


def ws_url(base_url: str, path: str, *, owner: str, example: str = "") -> str:
    """Scheme-swap ``base_url`` (http->ws, https->wss) and append ``path`` to any path prefix."""
    accepted = "http/https/ws/wss URLs are accepted"
    hint = f"pass e.g. base_url={example!r} ({accepted})" if example else accepted
    return endpoint(
        base_url, path, scheme="ws", bad_url=f"{owner} base_url={base_url!r} is not a URL; {hint}."
    )


def classify_failure(
    vendor: str, status: int | None, detail: str, *, env_var: str, retry_after: float | None = None
) -> PatterError:
    """Our error for a vendor failure given an HTTP-like status (None: unknown, treated as a drop)."""
    message = f"{vendor}: {detail}" if status is None else f"{vendor} refused with status {status}: {detail}"
    if status in (401, 403):
        return AuthenticationError(f"{message}. Check the api_key / {env_var}.")
    if status == 429:
        return RateLimitError(message, retry_after=retry_after)
    return PatterConnectionError(message)


async def connect_ws(
    url: str,
    headers: Mapping[str, str],
    *,
    vendor: str,
    env_var: str,
    secrets: Iterable[str],
    open_timeout_s: float,
    close_timeout_s: float,
    refusal_detail: Callable[[Response], str] | None = None,
) -> ClientConnection:
    """Open the socket, mapping an HTTP refusal of the upgrade onto our error types.

    ``refusal_detail``: the vendor's own reading of a refusal (headers, request id); default: the error
    text of the body. Either way secrets are redacted from it."""
    secrets = tuple(secrets)
    try:
        return await connect(
            url,
            logger=VENDOR_WS_LOGGER,
            additional_headers=dict(headers),
            open_timeout=open_timeout_s,
            close_timeout=close_timeout_s,
            max_size=4 * 1024 * 1024,
            compression=None,  # audio barely compresses; deflating every frame costs CPU per frame
        )
    except InvalidStatus as exc:
        response = exc.response
        raw = refusal_detail(response) if refusal_detail else vendor_message(bytes(response.body or b""))
        detail = redact(raw, secrets) or "no details"
        retry_after = retry_after_seconds({k.lower(): v for k, v in response.headers.raw_items()})
        raise classify_failure(
            vendor, response.status_code, detail, env_var=env_var, retry_after=retry_after
        ) from None
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise PatterConnectionError(f"{vendor}: could not connect to {url.split('?')[0]}: {exc}") from None


def parse_json(raw: str, vendor: str) -> dict[str, Any] | None:
    """A server text frame as a JSON object, or None (logged) when it is not one."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("%s sent a text frame that is not JSON; ignored", vendor)
        return None
    return message if isinstance(message, dict) else None


class WsSTTStream(STTStream, abc.ABC):
    """One live session; subclasses supply the message mapping and the control messages."""

    vendor: str = ""

    def __init__(
        self,
        ws: ClientConnection,
        input_format: AudioFormat,
        *,
        close_timeout_s: float,
        min_frame_ms: float = 20.0,
        max_frame_ms: float | None = None,
        pad_last_frame: bool = False,
        keepalive_s: float | None = None,
    ) -> None:
        self.audio_seconds = 0.0
        self.frames_sent = 0
        self._ws = ws
        self._format = input_format
        self._min_frame = input_format.bytes_for_ms(min_frame_ms)
        self._max_frame = input_format.bytes_for_ms(max_frame_ms) if max_frame_ms else None
        self._pad_last_frame = pad_last_frame
        self._buffer = bytearray()
        self._close_timeout_s = close_timeout_s
        self._keepalive_s = keepalive_s
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._loop.time()
        self._events: EventChannel[STTEvent] = EventChannel()
        self._failure: PatterError | None = None
        self._closing = False
        self._close_done: asyncio.Future[None] | None = None
        self._reader = asyncio.create_task(self._read_loop(), name=f"{self.vendor}-stt-reader")
        self._keepalive: asyncio.Task[None] | None = None
        if keepalive_s is not None:
            self._keepalive = asyncio.create_task(self._keepalive_loop(), name=f"{self.vendor}-stt-keepalive")

    # -- vendor hooks --------------------------------------------------------------------------------

    @abc.abstractmethod
    def _handle(self, raw: str) -> PatterError | None:
        """Map one server text frame onto events (``self._emit``); return an error to end the stream."""

    @abc.abstractmethod
    async def _send_finalize(self) -> None:
        """The vendor's "flush what you heard" control message."""

    @abc.abstractmethod
    async def _send_close(self) -> None:
        """The vendor's end-of-audio message (the server then flushes and closes)."""

    def _keepalive_message(self) -> str | None:
        return None

    def _close_error(self, code: int | None, reason: str) -> PatterError:
        """The error for a close we did not ask for; vendors refine it from their close codes."""
        return PatterConnectionError(f"{self.vendor} closed the stream unexpectedly ({code} {reason!r}).")

    def _emit(self, event: STTEvent) -> None:
        self._events.put_nowait(event)

    # -- outbound ------------------------------------------------------------------------------------

    async def send(self, audio: bytes) -> None:
        """Buffer ``audio``; ship whole frames of ``min_frame_ms``..``max_frame_ms``. No-op after close."""
        if self._closing:
            return
        self._raise_if_failed()
        self.audio_seconds += self._format.duration_ms(len(audio)) / 1000.0
        self._buffer += audio
        if len(self._buffer) >= self._min_frame:
            await self._flush_audio(last=False)

    async def finalize(self) -> None:
        if self._closing:
            return
        self._raise_if_failed()
        await self._flush_audio(last=True)
        await self._send_finalize()

    async def _flush_audio(self, *, last: bool) -> None:
        width = self._format.bytes_per_sample
        while True:
            usable = len(self._buffer) - len(self._buffer) % width
            if usable <= 0 or (not last and usable < self._min_frame):
                return
            size = min(usable, self._max_frame) if self._max_frame else usable
            chunk = bytes(self._buffer[:size])
            del self._buffer[:size]
            if len(chunk) < self._min_frame and self._pad_last_frame:
                chunk += self._silence(self._min_frame - len(chunk))
            await self._send(chunk)
            self.frames_sent += 1

    def _silence(self, n: int) -> bytes:
        fill = {"pcm16": b"\x00", "mulaw": b"\xff", "alaw": b"\xd5"}[self._format.encoding]
        return fill * n

    async def _send_json(self, message: Mapping[str, Any]) -> None:
        await self._send(orjson.dumps(message).decode())

    async def _send(self, message: bytes | str) -> None:
        try:
            await self._ws.send(message)
        except ConnectionClosed as exc:
            raise self._failure or PatterConnectionError(f"{self.vendor} connection lost: {exc}") from exc
        self._last_sent = self._loop.time()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _keepalive_loop(self) -> None:
        assert self._keepalive_s is not None
        message = self._keepalive_message()
        if message is None:
            return
        with contextlib.suppress(PatterConnectionError):
            while not self._closing:
                due = self._last_sent + self._keepalive_s - self._loop.time()
                if due > 0:
                    await asyncio.sleep(due)
                    continue
                await self._send(message)

    # -- inbound -------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        end = _End(None)
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    continue
                failure = self._handle(raw)
                if failure is not None:
                    end = _End(failure)
                    break
        except ConnectionClosed as exc:
            if not self._closing:
                rcvd = exc.rcvd
                end = _End(self._close_error(rcvd.code if rcvd else None, rcvd.reason if rcvd else ""))
        else:
            if end.error is None and not self._closing:
                end = _End(self._close_error(self._ws.close_code, self._ws.close_reason or ""))
        if end.error is not None:
            self._failure = end.error
            await self._ws.close()
        self._events.put_nowait(end)

    def __aiter__(self) -> WsSTTStream:
        return self

    async def __anext__(self) -> STTEvent:
        """Next event; raises the stream's error once if it died, then stops."""
        return await self._events.next()

    # -- shutdown ------------------------------------------------------------------------------------

    async def close(self) -> None:
        """End-of-audio message, drain the reader for up to ``close_timeout_s``, drop the socket."""
        if self._close_done is not None:
            await asyncio.shield(self._close_done)
            return
        self._close_done = self._loop.create_future()
        try:
            if self._failure is None and not self._reader.done():
                with contextlib.suppress(PatterConnectionError):
                    await self._flush_audio(last=True)
                    self._closing = True
                    await self._send_close()
            self._closing = True
            self._buffer.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), self._close_timeout_s)
            if self._keepalive is not None:
                self._keepalive.cancel()
            await self._ws.close()
            tasks = [t for t in (self._reader, self._keepalive) if t is not None]
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._close_done.set_result(None)
