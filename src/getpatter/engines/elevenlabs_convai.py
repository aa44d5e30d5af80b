"""ElevenLabs Conversational AI (ElevenAgents) as a speech-to-speech engine.

Wire facts: ``shared/protocols/elevenlabs-convai.md``. The contract this module keeps:

* The agent lives in the ElevenLabs dashboard (its LLM, tools, voice); a session only *overrides* what the
  agent allows. ``EngineConfig.tools`` cannot be registered over the socket and are ignored.
* Auth defaults to the documented signed-URL flow (REST ``get-signed-url`` with ``xi-api-key``, then the
  returned URL as-is); ``auth="header"`` connects with the ``xi-api-key`` header instead.
* Audio formats are agent settings; we *ask* for ``ulaw_8000`` (mu-law carrier) or ``pcm_16000`` in the
  override and then trust ``conversation_initiation_metadata``: ``input_format``/``output_format`` are
  what the server confirmed, and the call layer transcodes if they differ from the carrier's.
* Turn-taking and barge-in happen server-side. ``interruption`` becomes :class:`CallerSpeechStarted` and
  every audio event of the interrupted ids (``event_id`` <= the interruption's) is dropped, even if already
  queued. ``ping`` is answered with ``pong`` inside the session.
* A server close with 1000 (the agent ended the conversation) ends iteration cleanly; any other close or
  transport loss raises :class:`PatterConnectionError` from iteration.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Collection, Mapping
from typing import Any, Literal, Self
from urllib.parse import urlencode

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from getpatter._channel import EventChannel
from getpatter._channel import StreamEnd as _End
from getpatter._wslog import VENDOR_WS_LOGGER
from getpatter.audio.format import MULAW_8K, PCM16_16K, AudioFormat
from getpatter.engines._convai_protocol import (
    PAYLOAD_KEYS,
    VOICE_ID,
    _describe,
    _payload,
    _refusal,
    _Turns,
    convai_url,
    format_name,
    parse_format,
)
from getpatter.engines.base import (
    Engine,
    EngineConfig,
    EngineEvent,
    EngineSession,
)
from getpatter.errors import PatterConfigError, PatterConnectionError

__all__ = ["DEFAULT_BASE_URL", "ElevenLabsConvAI", "ElevenLabsConvAISession", "format_name", "parse_format"]

log = logging.getLogger(__name__)

ENV_KEY = "ELEVENLABS_API_KEY"
ENV_AGENT = "ELEVENLABS_AGENT_ID"
DEFAULT_BASE_URL = "wss://api.elevenlabs.io"
CONVERSATION_PATH = "/v1/convai/conversation"
SIGNED_URL_PATH = "/v1/convai/conversation/get-signed-url"
#: Which parts of the initiation override are sent; each must be enabled on the agent, or the server
#: closes the conversation. ``audio_format`` asks for the carrier-friendly formats (unverified keys).
ALL_OVERRIDES = frozenset({"prompt", "first_message", "language", "voice", "audio_format"})
AUDIO_FORMATS = frozenset({"auto", "ulaw_8000", "pcm_16000"})


class ElevenLabsConvAI(Engine):
    """A managed ElevenLabs agent; configuration only, each :meth:`connect` is one call's conversation."""

    provider_mode = "elevenlabs_convai"

    def __init__(
        self,
        api_key: str | None = None,
        agent_id: str | None = None,
        voice: str = "",
        *,
        base_url: str = DEFAULT_BASE_URL,
        auth: Literal["signed_url", "header"] = "signed_url",
        overrides: Collection[str] = ALL_OVERRIDES,
        dynamic_variables: Mapping[str, str | int | float | bool] | None = None,
        min_chunk_ms: float = 20.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        audio_format: Literal["auto", "ulaw_8000", "pcm_16000"] = "auto",
    ) -> None:
        if audio_format not in AUDIO_FORMATS:
            raise PatterConfigError(
                f"ElevenLabsConvAI audio_format={audio_format!r} must be one of {sorted(AUDIO_FORMATS)}."
            )
        key = api_key or os.environ.get(ENV_KEY, "")
        if not key:
            raise PatterConfigError(
                f"ElevenLabsConvAI needs an API key: pass api_key=... or set the {ENV_KEY} environment "
                "variable."
            )
        agent = agent_id or os.environ.get(ENV_AGENT, "")
        if not agent:
            raise PatterConfigError(
                "ElevenLabsConvAI needs the agent's id: pass agent_id=... or set the "
                f"{ENV_AGENT} environment variable."
            )
        if auth not in ("signed_url", "header"):
            raise PatterConfigError(f"ElevenLabsConvAI auth={auth!r} must be 'signed_url' or 'header'.")
        unknown = set(overrides) - ALL_OVERRIDES
        if unknown:
            raise PatterConfigError(
                f"ElevenLabsConvAI overrides={sorted(unknown)} unknown; choose from {sorted(ALL_OVERRIDES)}."
            )
        for name, value in (("min_chunk_ms", min_chunk_ms), ("open_timeout_s", open_timeout_s)):
            if value <= 0:
                raise PatterConfigError(f"ElevenLabsConvAI {name}={value!r} must be > 0.")
        self._api_key = key
        self.agent_id = agent
        self.voice = voice
        self.model = ""
        self.base_url = base_url
        self.auth = auth
        self.overrides = frozenset(overrides)
        self.dynamic_variables = dict(dynamic_variables or {})
        self.min_chunk_ms = min_chunk_ms
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.audio_format = audio_format
        self.ws_url = convai_url(base_url, CONVERSATION_PATH, "ws")
        self.rest_url = convai_url(base_url, SIGNED_URL_PATH, "http")

    def __repr__(self) -> str:
        return (
            f"ElevenLabsConvAI(agent_id={self.agent_id!r}, voice={self.voice!r}, auth={self.auth!r}, "
            f"base_url={self.base_url!r})"
        )

    @classmethod
    def for_twilio(cls, **kwargs: Any) -> Self:
        """Ask the agent for ``ulaw_8000`` both ways: Twilio's media format, passed through untouched."""
        return cls._with_format("ulaw_8000", kwargs)

    @classmethod
    def for_telnyx(cls, **kwargs: Any) -> Self:
        """Ask the agent for ``pcm_16000`` both ways: Telnyx's default L16/16000 stream format."""
        return cls._with_format("pcm_16000", kwargs)

    @classmethod
    def _with_format(cls, audio_format: Literal["ulaw_8000", "pcm_16000"], kwargs: dict[str, Any]) -> Self:
        if "audio_format" in kwargs:
            raise PatterConfigError(
                "ElevenLabsConvAI: for_twilio()/for_telnyx() choose audio_format themselves; construct "
                "ElevenLabsConvAI(audio_format=...) directly to pick another."
            )
        return cls(**kwargs, audio_format=audio_format)

    def requested_format(self, config: EngineConfig) -> AudioFormat:
        """``audio_format`` when fixed (for_twilio/for_telnyx); on "auto", mu-law 8 kHz carriers get
        ``ulaw_8000`` both ways (pass-through), everyone else PCM 16 kHz. The call converts any mismatch."""
        if self.audio_format != "auto":
            return MULAW_8K if self.audio_format == "ulaw_8000" else PCM16_16K
        return MULAW_8K if config.carrier_format == MULAW_8K else PCM16_16K

    def initiation(self, config: EngineConfig) -> dict[str, Any]:
        """The ``conversation_initiation_client_data`` message: only enabled, non-empty overrides.

        The voice is this engine's ``voice``; ``config.voice`` is used only when it looks like an
        ElevenLabs voice id (20 alphanumerics), so another engine's default (``"alloy"``) never leaks in.
        """
        agent: dict[str, Any] = {}
        if "prompt" in self.overrides and config.instructions:
            agent["prompt"] = {"prompt": config.instructions}
        if "first_message" in self.overrides and config.first_message:
            agent["first_message"] = config.first_message
        if "language" in self.overrides and config.language:
            agent["language"] = config.language
        override: dict[str, Any] = {"agent": agent} if agent else {}
        tts: dict[str, Any] = {}
        voice = self.voice or (config.voice if VOICE_ID.fullmatch(config.voice) else "")
        if "voice" in self.overrides and voice:
            tts["voice_id"] = voice
        if "audio_format" in self.overrides:
            name = format_name(self.requested_format(config))
            tts["output_format"] = name
            override["asr"] = {"input_format": name}
        if tts:
            override["tts"] = tts
        message: dict[str, Any] = {"type": "conversation_initiation_client_data"}
        if override:
            message["conversation_config_override"] = override
        if self.dynamic_variables:
            message["dynamic_variables"] = self.dynamic_variables
        return message

    async def connect(self, config: EngineConfig) -> ElevenLabsConvAISession:
        if config.tools:
            log.debug(
                "ElevenLabs ConvAI: %d tools ignored; client tools are declared on the agent",
                len(config.tools),
            )
        url = await self._signed_url() if self.auth == "signed_url" else self._plain_url()
        headers = {"xi-api-key": self._api_key} if self.auth == "header" else {}
        try:
            ws = await connect(
                url,
                logger=VENDOR_WS_LOGGER,
                additional_headers=headers,
                open_timeout=self.open_timeout_s,
                close_timeout=self.close_timeout_s,
                max_size=16 * 1024 * 1024,
            )
        except InvalidStatus as exc:
            response = exc.response
            body = response.body.decode("utf-8", "replace")
            raise _refusal(response.status_code, body, response.headers.get) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            # The signed URL is a credential (and InvalidURI quotes it): name only the configured endpoint.
            detail = type(exc).__name__ if isinstance(exc, InvalidURI) else str(exc)
            raise PatterConnectionError(
                f"ElevenLabs ConvAI: could not connect to {self.ws_url}: {detail}"
            ) from None
        wanted = self.requested_format(config)
        session = ElevenLabsConvAISession(ws, config.first_message, self.min_chunk_ms, self.close_timeout_s)
        await session._start(self.initiation(config), wanted, self.open_timeout_s)
        return session

    def _plain_url(self) -> str:
        return f"{self.ws_url}?{urlencode({'agent_id': self.agent_id})}"

    async def _signed_url(self) -> str:
        """Fetch a short-lived conversation URL (one per call; it is a credential, never logged)."""
        try:
            async with httpx.AsyncClient(timeout=self.open_timeout_s) as client:
                response = await client.get(
                    self.rest_url, params={"agent_id": self.agent_id}, headers={"xi-api-key": self._api_key}
                )
        except httpx.HTTPError as exc:
            raise PatterConnectionError(
                f"ElevenLabs ConvAI: could not reach {self.rest_url}: {exc}"
            ) from None
        if response.status_code == 404:
            raise PatterConfigError(
                f"ElevenLabs has no agent {self.agent_id!r} (HTTP 404): check agent_id / {ENV_AGENT}."
            )
        if response.status_code != 200:
            raise _refusal(response.status_code, response.text, response.headers.get)
        try:
            url = orjson.loads(response.content)["signed_url"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            url = None
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise PatterConnectionError("ElevenLabs ConvAI: get-signed-url answered without a signed_url.")
        return url


class ElevenLabsConvAISession(EngineSession):
    """One live conversation. A reader task turns server events into :class:`EngineEvent`\\ s."""

    def __init__(
        self, ws: ClientConnection, first_message: str, min_chunk_ms: float, close_timeout_s: float
    ) -> None:
        self.conversation_id = ""
        self.input_format = PCM16_16K
        self.output_format = PCM16_16K
        self.pongs_sent = 0
        self._ws = ws
        self._first_message = first_message.strip()
        self._min_chunk_ms = min_chunk_ms
        self._close_timeout_s = close_timeout_s
        self._buffer = bytearray()
        self._events: EventChannel[EngineEvent] = EventChannel()
        self._turns = _Turns(self._events.put_nowait)
        self._reader: asyncio.Task[None] | None = None
        self._failure: PatterConnectionError | None = None
        self._closing = False

    # -- start ---------------------------------------------------------------------------------------

    async def _start(self, initiation: dict[str, Any], wanted: AudioFormat, timeout_s: float) -> None:
        """Send the initiation, then wait for the metadata (events before it are handled as usual)."""
        try:
            await self._ws.send(orjson.dumps(initiation).decode())
            async with asyncio.timeout(timeout_s):
                while not self.conversation_id:
                    raw = await self._ws.recv()
                    if isinstance(raw, str):
                        await self._handle(raw)
        except (ConnectionClosed, TimeoutError, PatterConnectionError) as exc:
            await self._ws.close()
            if isinstance(exc, PatterConnectionError):
                raise
            why = "no metadata in time" if isinstance(exc, TimeoutError) else _describe(self._ws)
            raise PatterConnectionError(
                f"ElevenLabs ConvAI did not start the conversation ({why}); "
                "check that every override sent is enabled on the agent."
            ) from None
        if self.input_format != wanted or self.output_format != wanted:
            log.info(
                "ElevenLabs ConvAI: agent uses %s in / %s out (asked %s); set the agent's audio formats to "
                "avoid transcoding",
                format_name(self.input_format), format_name(self.output_format), format_name(wanted),
            )  # fmt: skip
        self._reader = asyncio.create_task(self._read_loop(), name="elevenlabs-convai-reader")

    def _on_metadata(self, event: dict[str, Any]) -> None:
        for attr, key in (
            ("input_format", "user_input_audio_format"),
            ("output_format", "agent_output_audio_format"),
        ):
            name = event.get(key) or "pcm_16000"  # the documented agent default
            fmt = parse_format(str(name))
            if fmt is None:
                raise PatterConnectionError(
                    f"ElevenLabs ConvAI: agent audio format {name!r} is not raw audio."
                )
            setattr(self, attr, fmt)
        self.conversation_id = str(event.get("conversation_id") or "?")

    # -- outbound ------------------------------------------------------------------------------------

    async def send_audio(self, audio: bytes) -> None:
        """Caller audio in ``input_format``, shipped as ``user_audio_chunk`` once >= ``min_chunk_ms``."""
        if self._closing:
            return
        self._raise_if_failed()
        self._buffer += audio
        width = self.input_format.bytes_per_sample
        if len(self._buffer) < self.input_format.bytes_for_ms(self._min_chunk_ms):
            return
        usable = len(self._buffer) - len(self._buffer) % width
        chunk = bytes(self._buffer[:usable])
        del self._buffer[:usable]
        await self._send({"user_audio_chunk": base64.b64encode(chunk).decode()})

    async def say(self, text: str) -> None:
        """The first message is spoken by the server from the initiation override, so saying it again is a
        no-op. ConvAI has no client event to speak arbitrary text verbatim: other text is logged and dropped
        (``send_user_text`` would make the agent *answer* it instead)."""
        if text.strip() and text.strip() != self._first_message:
            log.warning("ElevenLabs ConvAI cannot speak arbitrary text; say() ignored (%d chars)", len(text))

    async def send_user_text(self, text: str) -> None:
        """A typed user turn (``user_message``); the agent answers it."""
        await self._send({"type": "user_message", "text": text})

    async def send_contextual_update(self, text: str) -> None:
        """Background context for the agent that does not interrupt or trigger a reply."""
        await self._send({"type": "contextual_update", "text": text})

    async def interrupt(self, item_id: str, audio_end_ms: int) -> None:
        """ConvAI truncates server-side and has no client event for it: send nothing, stop yielding audio of
        ``item_id`` (and of everything received before it)."""
        self._turns.mute(item_id)

    async def send_tool_result(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        await self._send(
            {"type": "client_tool_result", "tool_call_id": call_id, "result": output, "is_error": is_error}
        )

    async def _send(self, message: dict[str, Any]) -> None:
        if self._closing:
            return
        self._raise_if_failed()
        try:
            await self._ws.send(orjson.dumps(message).decode())
        except ConnectionClosed as exc:
            raise self._failure or PatterConnectionError(
                f"ElevenLabs ConvAI connection lost: {exc}"
            ) from None

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    # -- inbound -------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        error: PatterConnectionError | None = None
        try:
            async for raw in self._ws:
                if isinstance(raw, str):
                    await self._handle(raw)
            if self._ws.close_code != 1000:
                error = PatterConnectionError(
                    f"ElevenLabs ConvAI closed the conversation ({_describe(self._ws)})."
                )
        except ConnectionClosed:
            error = PatterConnectionError(
                f"ElevenLabs ConvAI dropped the conversation ({_describe(self._ws)})."
            )
        except PatterConnectionError as exc:
            error = exc
        except Exception:  # a bug here must not leave the call waiting on a dead session forever
            log.exception("ElevenLabs ConvAI: unexpected failure while reading the conversation")
            error = PatterConnectionError("ElevenLabs ConvAI: internal error while reading the conversation.")
        if self._closing:
            error = None
        if error is None:
            self._turns.end_turn("completed")
        else:
            self._failure = error
            await self._ws.close()
        self._events.put_nowait(_End(error))

    async def _handle(self, raw: str) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("ElevenLabs ConvAI sent a text frame that is not JSON; ignored")
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        payload = _payload(message, PAYLOAD_KEYS.get(str(kind), ""))
        if kind == "ping":
            event_id = payload.get("event_id")
            await self._send({"type": "pong", "event_id": event_id})
            self.pongs_sent += 1
        elif kind == "conversation_initiation_metadata":
            self._on_metadata(payload)
        elif kind == "audio":
            audio = payload.get("audio_base_64")
            event_id = payload.get("event_id")
            try:
                data = base64.b64decode(audio, validate=True) if isinstance(audio, str) else b""
            except ValueError:
                data = b""
            if data and isinstance(event_id, int):
                self._turns.audio(event_id, data)
        elif kind == "agent_response":
            self._turns.agent_text(str(payload.get("agent_response") or ""))
        elif kind == "agent_response_correction":
            self._turns.correction(str(payload.get("corrected_agent_response") or ""))
        elif kind == "user_transcript":
            self._turns.user_text(str(payload.get("user_transcript") or ""))
        elif kind == "interruption":
            event_id = payload.get("event_id")
            self._turns.interruption(event_id if isinstance(event_id, int) else None)
        elif kind == "client_tool_call":
            self._turns.tool_call(
                str(payload.get("tool_call_id") or ""),
                str(payload.get("tool_name") or ""),
                orjson.dumps(payload.get("parameters") or {}).decode(),
            )
        elif kind == "agent_response_complete":
            self._turns.end_turn("completed")
        # vad_score, tentative transcripts, streaming text parts, server-side tool notices: not needed.

    def __aiter__(self) -> ElevenLabsConvAISession:
        return self

    async def __anext__(self) -> EngineEvent:
        """Next event; raises the session's PatterConnectionError once if it died, then stops."""
        while True:
            item = await self._events.next()  # StopAsyncIteration (or the error) at the end
            if self._turns.deliverable(item):
                return item

    # -- shutdown ------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the socket (1000) and stop the reader; idempotent, iteration then ends cleanly."""
        if self._closing:
            return
        self._closing = True
        self._buffer.clear()
        await self._ws.close()
        if self._reader is None or self._reader.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), self._close_timeout_s)
        except TimeoutError:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._events.put_nowait(_End(None))
