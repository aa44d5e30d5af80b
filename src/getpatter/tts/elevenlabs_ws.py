"""ElevenLabs TTS over the stream-input WebSocket: ``{ws}/v1/text-to-speech/{voice_id}/stream-input``.

Wire facts: ``shared/protocols/tts.md`` §1.2. One socket is one generation: the client sends the
initialise message (``text`` exactly one space), text chunks that each end with a space, and the end of
input ``{"text": ""}``; the server streams ``{"audio": <base64>}`` messages, then ``{"isFinal": true}``, then
closes. A ``flush`` makes the server speak what it has buffered but does **not** produce ``isFinal``, so this
client never waits for ``isFinal`` before it has sent the end of input.

Two ways in: :meth:`ElevenLabsWebSocketTTS.synthesize` (a whole text, the base interface) and
:meth:`ElevenLabsWebSocketTTS.open_stream` (LLM tokens in as they arrive, audio out as soon as the vendor has
it). Failures: a handshake refusal maps like HTTP (401/403/429/5xx); an error message from the server, a
stall longer than ``frame_timeout`` while audio is owed, a frame over 512 KB, undecodable audio or a close
before ``isFinal`` raise :class:`ElevenLabsTTSError` (a :class:`PatterConnectionError`); an error naming the
API key raises :class:`AuthenticationError`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote, urlencode

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from getpatter._provider import with_attributes
from getpatter.audio.format import AudioFormat
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, PatterError
from getpatter.tts._http import normalize_base_url, resolve_api_key
from getpatter.tts._ws import SampleCarry, connect_ws, redact, ws_endpoint
from getpatter.tts.base import TTS as BaseTTS
from getpatter.tts.elevenlabs import (
    ELEVENLABS_BASE_URL,
    ENV_VAR,
    OUTPUT_FORMATS,
    VOICE_SETTING_KEYS,
    audio_format_for,
    resolve_voice_id,
)

DEFAULT_VOICE_ID: Final = "21m00Tcm4TlvDq8ikWAM"
#: Largest server frame we accept; a bigger one is a vendor fault, not audio we could play in time.
MAX_FRAME_BYTES: Final = 512 * 1024
MAX_INACTIVITY_TIMEOUT: Final = 180
_AUTH_MARKERS: Final = ("api key", "api_key", "unauthorized", "authentication", "invalid_authorization")
_MESSAGE_TOO_BIG: Final = 1009


class ElevenLabsTTSError(PatterConnectionError):
    """The ElevenLabs socket failed mid-generation; ``vendor_code`` is the server's ``error`` field."""

    def __init__(self, message: str, *, vendor_code: str | None = None) -> None:
        super().__init__(message)
        self.vendor_code = vendor_code


def _is_auth_problem(*texts: str | None) -> bool:
    joined = " ".join(t for t in texts if t).lower()
    return any(marker in joined for marker in _AUTH_MARKERS)


class ElevenLabsStream:
    """One stream-input generation: ``push_text`` tokens, ``end()``, iterate audio in ``output_format``.

    Text is forwarded word by word (each message ends with whitespace, as the vendor requires); a
    partial word waits for the next delta or :meth:`end`. Iterating the stream yields audio until
    ``isFinal``; cancelling the iterating task or :meth:`aclose` closes the socket so generation stops.
    Use ``async with`` to guarantee the close when the consumer stops early.
    """

    def __init__(self, ws: ClientConnection, *, sample_width: int, frame_timeout: float, secret: str) -> None:
        self._ws = ws
        self._carry = SampleCarry(sample_width)
        self._frame_timeout = frame_timeout
        self._secret = secret
        self._pending = ""
        self._owed = False  # the server owes us audio (after a flush or the end of input)
        self._ended = False
        self._iterated = False
        #: Characters of text given to this stream (the billing unit).
        self.characters = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def push_text(self, delta: str) -> None:
        """Queue ``delta``; every complete word is sent at once so the vendor can start generating."""
        if self._ended:
            raise PatterError("ElevenLabsStream: push_text() after end().")
        self.characters += len(delta)
        self._pending += delta
        cut = max(self._pending.rfind(" "), self._pending.rfind("\n"), self._pending.rfind("\t"))
        if cut < 0:
            return
        piece, self._pending = self._pending[: cut + 1], self._pending[cut + 1 :]
        await self._send_text(piece, flush=False)

    async def flush(self) -> None:
        """Make the vendor speak everything sent so far (e.g. at a sentence end) without ending input."""
        if self._ended:
            return
        piece, self._pending = self._pending, ""
        await self._send({"text": _terminated(piece) if piece.strip() else " ", "flush": True})
        self._owed = True

    async def end(self) -> None:
        """Send what is left, then the end of input; the server finishes the audio and sends ``isFinal``."""
        if self._ended:
            return
        piece, self._pending = self._pending, ""
        if piece.strip():
            await self._send_text(piece, flush=False)
        self._ended = True
        self._owed = True
        await self._send({"text": ""})

    async def _send_text(self, piece: str, *, flush: bool) -> None:
        if not piece.strip():
            return  # whitespace alone is a keep-alive at best; never send "" (that would end input)
        message: dict[str, Any] = {"text": _terminated(piece)}
        if flush:
            message["flush"] = True
        await self._send(message)

    async def _send(self, message: Mapping[str, Any]) -> None:
        try:
            await self._ws.send(orjson.dumps(message).decode())
        except ConnectionClosed as exc:
            raise self._closed_error(exc) from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterated:
            raise PatterError("ElevenLabsStream can be iterated only once.")
        self._iterated = True
        return self._audio()

    async def _audio(self) -> AsyncIterator[bytes]:
        try:
            while True:
                raw = await self._recv()
                chunk, final = self._handle(raw)
                if chunk:
                    yield chunk
                if final:
                    return
        finally:
            await self.aclose()

    async def _recv(self) -> str | bytes:
        """Next frame. A silent server only counts as stalled while it owes us audio."""
        while True:
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._frame_timeout):
                        return await self._ws.recv()
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from None
            if self._owed:
                raise ElevenLabsTTSError(
                    f"ElevenLabs TTS: no frame for {self._frame_timeout} s while audio was pending (stall)."
                )

    def _handle(self, raw: str | bytes) -> tuple[bytes, bool]:
        """Audio bytes to yield (maybe empty) and whether the generation is final."""
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ElevenLabsTTSError("ElevenLabs TTS: server sent a frame that is not JSON.") from None
        if not isinstance(message, dict):
            raise ElevenLabsTTSError("ElevenLabs TTS: server sent an unexpected JSON value.")
        if message.get("error") or (message.get("message") and not message.get("audio")):
            raise self._error_frame(message)
        audio = b""
        encoded = message.get("audio")
        if encoded:
            if not isinstance(encoded, str):
                raise ElevenLabsTTSError("ElevenLabs TTS: 'audio' is not a base64 string.")
            try:
                audio = self._carry.feed(base64.b64decode(encoded, validate=True))
            except (binascii.Error, ValueError):
                raise ElevenLabsTTSError("ElevenLabs TTS: 'audio' is not valid base64.") from None
        return audio, bool(message.get("isFinal") or message.get("is_final"))

    def _error_frame(self, message: dict[str, Any]) -> PatterError:
        code = message.get("error")
        code_text = str(code) if code else None
        detail = redact(str(message.get("message") or code or "unknown error"), self._secret)[:300]
        text = f"ElevenLabs TTS error{f' {code_text}' if code_text else ''}: {detail}"
        if _is_auth_problem(code_text, detail):
            return AuthenticationError(f"{text}. Check api_key / {ENV_VAR}.")
        return ElevenLabsTTSError(text, vendor_code=code_text)

    def _closed_error(self, exc: ConnectionClosed) -> PatterError:
        if exc.rcvd is None and exc.sent is not None and exc.sent.code == _MESSAGE_TOO_BIG:
            return ElevenLabsTTSError(f"ElevenLabs TTS: server frame larger than {MAX_FRAME_BYTES} bytes.")
        code = exc.rcvd.code if exc.rcvd is not None else None
        reason = redact(exc.rcvd.reason, self._secret)[:300] if exc.rcvd is not None else ""
        if _is_auth_problem(reason):
            return AuthenticationError(f"ElevenLabs TTS refused the key ({code} {reason}). Check {ENV_VAR}.")
        return ElevenLabsTTSError(f"ElevenLabs TTS: socket closed before isFinal ({code} {reason!r}).")

    async def aclose(self) -> None:
        """Close the socket (idempotent); the vendor stops generating for it."""
        await self._ws.close()


def _terminated(piece: str) -> str:
    return piece if piece.endswith(" ") else piece + " "


class ElevenLabsWebSocketTTS(BaseTTS):
    """ElevenLabs stream-input TTS; ``provider_id`` ``elevenlabs_ws``, billed per character.

    ``auto_mode=True`` lets the server choose chunking (lowest latency for whole phrases);
    ``chunk_length_schedule`` (5-500 chars each) only applies, and is only accepted, with ``auto_mode=False``.
    ``inactivity_timeout`` (1-180 s) is how long the server keeps an idle stream open. ``open_timeout`` bounds
    the handshake; ``frame_timeout`` bounds the wait for the next frame while audio is owed.
    """

    provider_id = "elevenlabs_ws"

    def __init__(
        self,
        api_key: str | None = None,
        voice_id: str = DEFAULT_VOICE_ID,
        model_id: str = "eleven_flash_v2_5",
        *,
        output_format: str | None = None,
        voice_settings: Mapping[str, float | bool] | None = None,
        language_code: str | None = None,
        auto_mode: bool = True,
        inactivity_timeout: int = 60,
        chunk_length_schedule: Sequence[int] | None = None,
        open_timeout: float = 5.0,
        frame_timeout: float = 30.0,
        base_url: str = ELEVENLABS_BASE_URL,
        ws_base_url: str | None = None,
    ) -> None:
        owner = "ElevenLabsWebSocketTTS"
        key = resolve_api_key(api_key, owner=owner, env_var=ENV_VAR)
        # Left unset: pcm_16000 on its own, the carrier's format on a call (for_wire: ulaw_8000 on Twilio).
        self.format_pinned = output_format is not None
        output_format = "pcm_16000" if output_format is None else output_format
        self.audio_format = audio_format_for(output_format)
        if not model_id:
            raise PatterConfigError(f"{owner}: model_id must be non-empty, e.g. 'eleven_flash_v2_5'.")
        if model_id.startswith("eleven_v3"):
            raise PatterConfigError(
                f"{owner}: model_id {model_id!r} is not available on the WebSocket endpoint; "
                "use ElevenLabsTTS (HTTP) for eleven_v3, or model_id='eleven_flash_v2_5'."
            )
        if voice_settings is not None and (unknown := sorted(set(voice_settings) - VOICE_SETTING_KEYS)):
            raise PatterConfigError(
                f"{owner}: unknown voice_settings keys {unknown}; "
                f"valid: {', '.join(sorted(VOICE_SETTING_KEYS))}."
            )
        if isinstance(inactivity_timeout, bool) or not isinstance(inactivity_timeout, int):
            raise PatterConfigError(f"{owner}: inactivity_timeout must be an int of seconds.")
        if not 1 <= inactivity_timeout <= MAX_INACTIVITY_TIMEOUT:
            raise PatterConfigError(
                f"{owner}: inactivity_timeout must be 1-{MAX_INACTIVITY_TIMEOUT} s "
                f"(got {inactivity_timeout})."
            )
        if chunk_length_schedule is not None:
            if auto_mode:
                raise PatterConfigError(
                    f"{owner}: chunk_length_schedule is ignored with auto_mode=True; pass auto_mode=False."
                )
            schedule = list(chunk_length_schedule)
            if not schedule or any(
                isinstance(v, bool) or not isinstance(v, int) or not 5 <= v <= 500 for v in schedule
            ):
                raise PatterConfigError(
                    f"{owner}: chunk_length_schedule must be a non-empty list of ints 5-500 (got {schedule})."
                )
        for name, seconds in (("open_timeout", open_timeout), ("frame_timeout", frame_timeout)):
            if seconds <= 0:
                raise PatterConfigError(f"{owner}: {name} must be > 0 seconds (got {seconds}).")
        self.voice_id = resolve_voice_id(voice_id)
        self.voice = self.voice_id
        self.model = model_id
        self.output_format = output_format
        self.voice_settings = dict(voice_settings) if voice_settings is not None else None
        self.language_code = language_code
        self.auto_mode = auto_mode
        self.inactivity_timeout = inactivity_timeout
        self.chunk_length_schedule = list(chunk_length_schedule) if chunk_length_schedule else None
        self.open_timeout = open_timeout
        self.frame_timeout = frame_timeout
        normalize_base_url(base_url, owner=owner)
        path = f"/v1/text-to-speech/{quote(self.voice_id, safe='')}/stream-input"
        self._url = ws_endpoint(base_url, ws_base_url, path, owner=owner)
        self._api_key = key

    @property
    def model_id(self) -> str:
        return self.model

    def _wire_native(self, wire: AudioFormat) -> Self | None:
        """ElevenLabs produces the carriers' formats: ulaw_8000, alaw_8000 and pcm_<rate>."""
        name = next((n for n, fmt in OUTPUT_FORMATS.items() if fmt == wire), None)
        if name is None:
            return None
        return with_attributes(self, output_format=name, audio_format=wire)

    @classmethod
    def for_twilio(cls, **kwargs: Any) -> Self:
        """µ-law 8 kHz output (``ulaw_8000``): Twilio's wire format, passed through untouched."""
        return cls._with_format("ulaw_8000", kwargs)

    @classmethod
    def for_telnyx(cls, **kwargs: Any) -> Self:
        """PCM16 16 kHz output (``pcm_16000``): Telnyx's L16/16000 stream format."""
        return cls._with_format("pcm_16000", kwargs)

    @classmethod
    def _with_format(cls, output_format: str, kwargs: dict[str, Any]) -> Self:
        if "output_format" in kwargs:
            raise PatterConfigError(
                "ElevenLabsWebSocketTTS: for_twilio()/for_telnyx() choose output_format themselves."
            )
        return cls(output_format=output_format, **kwargs)

    def __repr__(self) -> str:
        return (
            f"ElevenLabsWebSocketTTS(voice_id={self.voice_id!r}, model_id={self.model!r}, "
            f"output_format={self.output_format!r}, auto_mode={self.auto_mode})"
        )

    def query_params(self) -> list[tuple[str, str]]:
        """Handshake query: model, format, chunking mode and inactivity window (language when set)."""
        params = [
            ("model_id", self.model),
            ("output_format", self.output_format),
            ("auto_mode", "true" if self.auto_mode else "false"),
            ("inactivity_timeout", str(self.inactivity_timeout)),
        ]
        if self.language_code:
            params.append(("language_code", self.language_code))
        return params

    def initial_message(self) -> dict[str, Any]:
        """The initialise message: ``text`` is exactly one space; settings ride along when set."""
        message: dict[str, Any] = {"text": " "}
        if self.voice_settings is not None:
            message["voice_settings"] = self.voice_settings
        if self.chunk_length_schedule is not None:
            message["generation_config"] = {"chunk_length_schedule": self.chunk_length_schedule}
        return message

    async def open_stream(self) -> ElevenLabsStream:
        """Connect and initialise one generation; feed it with ``push_text`` and finish with ``end()``."""
        ws = await connect_ws(
            f"{self._url}?{urlencode(self.query_params())}",
            headers={"xi-api-key": self._api_key},
            vendor="ElevenLabs TTS",
            secret=self._api_key,
            open_timeout=self.open_timeout,
            max_size=MAX_FRAME_BYTES,
        )
        stream = ElevenLabsStream(
            ws,
            sample_width=self.audio_format.bytes_per_sample,
            frame_timeout=self.frame_timeout,
            secret=self._api_key,
        )
        try:
            await stream._send(self.initial_message())
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield the audio of ``text`` in ``output_format``; blank text opens no socket."""
        if not text.strip():
            return
        stream = await self.open_stream()
        try:
            stream.characters += len(text)
            await stream._send_text(text, flush=False)  # one whole message: the vendor sees the phrase
            await stream.end()
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()


TTS = ElevenLabsWebSocketTTS

__all__ = [
    "DEFAULT_VOICE_ID",
    "MAX_FRAME_BYTES",
    "TTS",
    "ElevenLabsStream",
    "ElevenLabsTTSError",
    "ElevenLabsWebSocketTTS",
]
