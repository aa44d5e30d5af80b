"""OpenAI Realtime speech-to-speech engine over its WebSocket (GA protocol).

Wire facts: ``shared/protocols/openai-realtime.md``. The contract this module keeps:

* ``connect`` opens ``<ws base>/realtime?model=...`` with a Bearer key and **no** ``OpenAI-Beta`` header
  (the beta shape is retired), waits for ``session.created``, sends one ``session.update`` and returns
  only once ``session.updated`` confirmed it -- so the first caller audio is read in the right format.
* Audio: a mu-law 8 kHz carrier (Twilio) gets G.711 mu-law both ways, bytes passed through untouched
  (A-law likewise); anything else is PCM16 24 kHz, which the call layer converts to/from.
* ``say`` is a ``response.create`` whose per-response ``instructions`` ask the model to speak the text
  verbatim (tools off for that response). The Realtime API has no "speak this text" primitive; an
  assistant item created by the client is never voiced, so this is the only way to get the first
  message *spoken in the model's voice* and kept in the conversation the model sees afterwards.
* Handshake refusals map to AuthenticationError (401/403), RateLimitError (429) or
  PatterConnectionError; a connection we did not close ends iteration with PatterConnectionError.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import os
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlencode

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from getpatter._channel import EventChannel
from getpatter._channel import StreamEnd as _End
from getpatter._urls import endpoint
from getpatter._wslog import VENDOR_WS_LOGGER
from getpatter.audio.format import AudioFormat
from getpatter.engines import _realtime_events as wire
from getpatter.engines.base import (
    Engine,
    EngineConfig,
    EngineError,
    EngineEvent,
    EngineSession,
    check_realtime_voice,
)
from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)

__all__ = ["DEFAULT_MODEL", "OpenAIRealtime", "OpenAIRealtimeSession", "realtime_url"]

log = logging.getLogger(__name__)

ENV_VAR: Final = "OPENAI_API_KEY"
DEFAULT_MODEL: Final = "gpt-4o-mini-realtime-preview"
DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
_APPEND_HEAD: Final = b'{"type":"input_audio_buffer.append","audio":"'
_SAY_PROMPT: Final = (
    "Speak the following text to the caller exactly as written, word for word, adding nothing before "
    "or after it and changing nothing:\n\n"
)


def realtime_url(base_url: str, ws_base_url: str | None, model: str) -> str:
    """``ws_base_url`` if given, else ``base_url`` with http->ws / https->wss; then ``/realtime?model=``.

    As in openai-python GA, ``/realtime`` is appended to either base (trailing ``/`` stripped).
    """
    base = ws_base_url or base_url
    bad_url = (
        f"OpenAIRealtime base_url={base!r} is not a URL; pass e.g. base_url='https://api.openai.com/v1'."
    )
    return endpoint(base, "/realtime", scheme="ws", bad_url=bad_url, query=urlencode({"model": model}))


class OpenAIRealtime(Engine):
    """OpenAI Realtime configuration; shareable across calls, each :meth:`connect` is one call.

    ``turn_detection`` is the GA ``audio.input.turn_detection`` object (default: server VAD, threshold
    0.5, prefix 300 ms, silence 300 ms); pass ``False`` to send ``null`` and drive turns yourself.
    ``noise_reduction`` is ``"near_field"`` or ``"far_field"``. ``temperature`` is accepted for API
    compatibility but **not sent**: the GA session schema has no temperature field.
    """

    provider_mode = "openai_realtime"

    def __init__(
        self,
        api_key: str | None = None,
        voice: str = "alloy",
        model: str = DEFAULT_MODEL,
        *,
        base_url: str = DEFAULT_BASE_URL,
        ws_base_url: str | None = None,
        input_transcription_model: str | None = "whisper-1",
        turn_detection: Mapping[str, Any] | Literal[False] | None = None,
        noise_reduction: Literal["near_field", "far_field"] | None = None,
        temperature: float | None = None,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        allow_unlisted_voice: bool = False,
    ) -> None:
        check_realtime_voice(voice, "OpenAIRealtime voice", allow_unlisted=allow_unlisted_voice)
        key = api_key or os.environ.get(ENV_VAR)
        if not key:
            raise PatterConfigError(
                "OpenAIRealtime needs an API key: pass api_key=... or set the "
                f"{ENV_VAR} environment variable."
            )
        if noise_reduction not in (None, "near_field", "far_field"):
            raise PatterConfigError(
                f"OpenAIRealtime noise_reduction={noise_reduction!r} must be "
                "'near_field', 'far_field' or None."
            )
        if (
            turn_detection is not None
            and turn_detection is not False
            and not isinstance(turn_detection, Mapping)
        ):
            raise PatterConfigError(
                "OpenAIRealtime turn_detection must be a dict, False (off) or None (default)."
            )
        if open_timeout_s <= 0 or close_timeout_s <= 0:
            raise PatterConfigError("OpenAIRealtime open_timeout_s and close_timeout_s must be > 0 seconds.")
        if temperature is not None:
            log.warning("OpenAIRealtime: temperature is not part of the GA Realtime session; it is not sent")
        self._api_key = key
        self.voice = voice
        self.allow_unlisted_voice = allow_unlisted_voice
        self.model = model
        self.base_url = base_url
        self.ws_base_url = ws_base_url
        self.input_transcription_model = input_transcription_model
        self.turn_detection: dict[str, Any] | None = (
            None if turn_detection is False else dict(turn_detection or wire.DEFAULT_TURN_DETECTION)
        )
        self.noise_reduction = noise_reduction
        self.temperature = temperature
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        realtime_url(base_url, ws_base_url, model)  # validate early

    def __repr__(self) -> str:
        return f"OpenAIRealtime(model={self.model!r}, voice={self.voice!r}, base_url={self.base_url!r})"

    async def connect(self, config: EngineConfig) -> OpenAIRealtimeSession:
        """Open the socket and configure the session (see the module docstring)."""
        model = config.model or self.model
        url = realtime_url(self.base_url, self.ws_base_url, model)
        try:
            ws = await connect(
                url,
                logger=VENDOR_WS_LOGGER,
                additional_headers={"Authorization": f"Bearer {self._api_key}"},
                open_timeout=self.open_timeout_s,
                close_timeout=self.close_timeout_s,
                max_size=16 * 1024 * 1024,
                compression=None,  # base64 audio does not deflate; keep per-frame cost low
            )
        except InvalidStatus as exc:
            raise _refusal(exc, self._api_key) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise PatterConnectionError(
                f"OpenAI Realtime: could not connect to {url.split('?')[0]}: {exc}"
            ) from None
        fmt = wire.engine_formats(config.carrier_format)
        update = wire.session_update(
            instructions=config.instructions,
            voice=config.voice or self.voice,
            fmt=fmt,
            tools=config.tools,
            turn_detection=self.turn_detection,
            transcription_model=self.input_transcription_model,
            language=config.language,
            noise_reduction=self.noise_reduction,
        )
        try:
            await asyncio.wait_for(_configure(ws, update), self.open_timeout_s)
        except BaseException as exc:
            await ws.close()
            if isinstance(exc, TimeoutError):
                raise PatterConnectionError(
                    "OpenAI Realtime: no session.updated within the open timeout"
                ) from None
            raise
        return OpenAIRealtimeSession(ws, fmt, self.close_timeout_s)


async def _configure(ws: ClientConnection, update: dict[str, Any]) -> None:
    """``session.created`` -> send ``session.update`` -> ``session.updated``; an ``error`` aborts."""
    sent = False
    while True:
        try:
            raw = await ws.recv()
        except ConnectionClosed as exc:
            raise _closed_error(
                exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else ""
            ) from None
        message = _decode(raw)
        kind = message.get("type")
        if kind == "session.created" and not sent:
            await ws.send(orjson.dumps({**update, "event_id": "patter_setup"}), text=True)
            sent = True
        elif kind == "session.updated" and sent:
            return
        elif kind == "error":
            detail = message.get("error")
            error = wire.error_event(detail if isinstance(detail, Mapping) else {}, "session.update")
            raise PatterError(error.message, code=ErrorCode.PROVIDER_ERROR)


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("OpenAI Realtime sent a frame that is not JSON; ignored")
        return {}
    return message if isinstance(message, dict) else {}


def _closed_error(code: int | None, reason: str) -> PatterConnectionError:
    if reason == "beta_api_shape_disabled":
        return PatterConnectionError("OpenAI Realtime refused the beta protocol shape (close 4000).")
    return PatterConnectionError(f"OpenAI Realtime closed the connection unexpectedly ({code} {reason!r}).")


def _refusal(exc: InvalidStatus, api_key: str) -> PatterError:
    """Map an HTTP answer to the upgrade onto our errors; the vendor text is kept, the key masked."""
    response = exc.response
    status = response.status_code
    body = response.body or b""
    detail = ""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        doc = orjson.loads(body)
        detail = str(doc.get("error", {}).get("message") or "")
    detail = (detail or body.decode("utf-8", "replace"))[:300].replace(api_key, "***")
    message = f"OpenAI Realtime refused the connection with HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return AuthenticationError(message + f" Check api_key / {ENV_VAR}.")
    if status == 429:
        retry_after: float | None = None
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(response.headers.get("retry-after", ""))
        return RateLimitError(message, retry_after=retry_after)
    return PatterConnectionError(message)


class OpenAIRealtimeSession(EngineSession):
    """One live Realtime session; a reader task maps server events onto a queue of engine events."""

    def __init__(self, ws: ClientConnection, fmt: AudioFormat, close_timeout_s: float) -> None:
        self.input_format = fmt
        self.output_format = fmt
        self._ws = ws
        self._close_timeout_s = close_timeout_s
        self._mapper = wire.EventMapper(fmt)
        self._events: EventChannel[EngineEvent] = EventChannel()
        self._ids = itertools.count(1)
        self._failure: PatterError | None = None
        self._closing = False
        self._close_done: asyncio.Future[None] | None = None
        self._reader = asyncio.create_task(self._read_loop(), name="openai-realtime-reader")

    # -- outbound ------------------------------------------------------------------------------------

    async def send_audio(self, audio: bytes) -> None:
        """``input_audio_buffer.append``; the JSON is assembled around the base64 without a dict/dumps."""
        if self._closing or not audio:
            return
        await self._send(_APPEND_HEAD + base64.b64encode(audio) + b'"}')

    async def say(self, text: str) -> None:
        await self._event(
            {
                "type": "response.create",
                "response": {"instructions": _SAY_PROMPT + text, "tool_choice": "none"},
            }
        )

    async def send_user_text(self, text: str) -> None:
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        await self._event({"type": "conversation.item.create", "item": item})
        await self._event({"type": "response.create"})

    async def interrupt(self, item_id: str, audio_end_ms: int) -> None:
        """``response.cancel`` then ``conversation.item.truncate``. ``audio_end_ms`` is clamped to the
        audio received for the item (less any earlier truncation): the API rejects a larger value.

        The cancel is sent unconditionally; if the server already ended the response (server VAD with
        ``interrupt_response``) it answers a non-fatal ``response_cancel_not_active`` error."""
        await self._event({"type": "response.cancel"})
        if not item_id:
            return
        received = self._mapper.audio_ms(item_id)
        end_ms = max(0, int(audio_end_ms) if received is None else min(int(audio_end_ms), received))
        self._mapper.truncated(item_id, end_ms)
        await self._event(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": end_ms,
            }
        )

    async def send_tool_result(self, call_id: str, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call_id, "output": output}
        await self._event({"type": "conversation.item.create", "item": item})
        await self._event({"type": "response.create"})

    async def _event(self, event: dict[str, Any]) -> None:
        if self._closing:
            return
        event_id = f"patter_{next(self._ids)}"
        self._mapper.remember_sent(event_id, str(event["type"]))
        await self._send(orjson.dumps({**event, "event_id": event_id}))

    async def _send(self, frame: bytes) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            await self._ws.send(frame, text=True)
        except ConnectionClosed as exc:
            raise self._failure or PatterConnectionError(f"OpenAI Realtime connection lost: {exc}") from None

    # -- inbound -------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        end = _End(None)
        try:
            async for raw in self._ws:
                for event in self._mapper.handle(_decode(raw)):
                    if isinstance(event, EngineError):
                        log.log(logging.ERROR if event.fatal else logging.INFO, "%s", event.message)
                    self._events.put_nowait(event)
            if not self._closing:
                end = _End(_closed_error(self._ws.close_code, self._ws.close_reason or ""))
        except ConnectionClosed as exc:
            if not self._closing:
                rcvd = exc.rcvd
                end = _End(_closed_error(rcvd.code if rcvd else None, rcvd.reason if rcvd else ""))
        except Exception as exc:  # a bug in mapping must not leave the iterator hanging
            log.exception("OpenAI Realtime reader failed")
            end = _End(PatterConnectionError(f"OpenAI Realtime session failed: {type(exc).__name__}"))
        finally:
            if end.error is not None:
                self._failure = end.error
            self._events.put_nowait(end)

    def __aiter__(self) -> OpenAIRealtimeSession:
        return self

    async def __anext__(self) -> EngineEvent:
        """Next event; raises the session's PatterConnectionError once if it dropped, then stops."""
        return await self._events.next()

    # -- shutdown ------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the socket (normal closure) and end iteration; safe to call more than once."""
        if self._close_done is not None:
            await asyncio.shield(self._close_done)
            return
        self._close_done = asyncio.get_running_loop().create_future()
        self._closing = True
        try:
            await self._ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), self._close_timeout_s)
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        finally:
            self._close_done.set_result(None)


Realtime = OpenAIRealtime
