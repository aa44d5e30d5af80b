"""Fake ElevenLabs stream-input WebSocket (protocols/tts.md §1.2): ``/v1/text-to-speech/{id}/stream-input``.

Strict where the docs are: auth by ``xi-api-key`` header (or in the first message), known query parameters
only (``output_format`` from the raw list, ``eleven_v3`` refused, ``inactivity_timeout`` <= 180, booleans
lowercase), the first message must have ``text`` exactly one space, every later text chunk must end with
whitespace, ``""`` ends input, unknown message keys are refused. Refusals after the upgrade are an error JSON
then close 1008, as the real service does.

Generation: text is buffered; a ``flush``, the end of input, or (with ``auto_mode=true``) a sentence end
followed by a space makes the fake speak the buffer: a tone of ``len(text.strip()) * ms_per_char`` ms in the
requested format, base64 in ``{"audio": …}`` frames of odd sizes. After the end of input: ``{"isFinal":
true}`` and close 1000. A flush never produces ``isFinal``.

Pacing (the benchmark; off by default): like the HTTP fake's, a generation's first audio comes
``first_byte_delay_s`` after it is due (the flush, the end of input, or auto_mode's sentence end), then
``pace_chunk_ms`` of audio per frame at ``pace_speed`` x real time. Messages sent meanwhile wait, as
they wait for the unpaced fake's frames.

Fault knobs: ``reject_status`` (HTTP refusal of the upgrade), ``error_after_frames`` (error JSON + close
1008), ``drop_after_frames`` (close 1011, no final), ``stall_after_frames`` (go silent until the client
leaves), ``oversize_frame`` (one frame over 512 KB), ``bad_base64``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tests.fakes.elevenlabs import MODELS, RAW_FORMATS, SETTING_RANGES, VOICE_ID
from tests.fakes.openai_audio import cut, tone

QUERY_KEYS = frozenset(
    {
        "model_id",
        "output_format",
        "language_code",
        "inactivity_timeout",
        "auto_mode",
        "sync_alignment",
        "enable_ssml_parsing",
        "enable_logging",
        "apply_text_normalization",
    }
)
BOOL_KEYS = ("auto_mode", "sync_alignment", "enable_ssml_parsing", "enable_logging")
FIRST_KEYS = frozenset(
    {
        "text",
        "voice_settings",
        "generation_config",
        "xi-api-key",
        "xi_api_key",
        "authorization",
        "pronunciation_dictionary_locators",
    }
)
TEXT_KEYS = frozenset({"text", "flush", "try_trigger_generation", "voice_settings", "generator_config"})
CHUNK_SIZES = (1, 1023, 777, 4097, 333)
_SENTENCE_END = re.compile(r"[.!?]\s")


class _Refuse(Exception):
    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error, self.message = error, message


@dataclass
class WsConnection:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)
    server_close: int | None = None
    client_close: int | None = None
    gone: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class FakeElevenLabsWS:
    api_key: str = "test-key"
    ms_per_char: float = 40.0
    reject_status: int | None = None
    error_after_frames: int | None = None
    drop_after_frames: int | None = None
    stall_after_frames: int | None = None
    oversize_frame: bool = False
    bad_base64: bool = False
    first_byte_delay_s: float = 0.0
    pace_chunk_ms: float = 0.0
    pace_speed: float = 4.0
    connections: list[WsConnection] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[WebSocketRoute("/v1/text-to-speech/{voice_id}/stream-input", self._endpoint)]
        )

    def _check_query(self, query: dict[str, str], voice_id: str) -> tuple[str, int, bool]:
        for key in query:
            if key not in QUERY_KEYS:
                raise _Refuse("invalid_request", f"unknown query parameter {key!r}")
        for key in BOOL_KEYS:
            if key in query and query[key] not in ("true", "false"):
                raise _Refuse("invalid_request", f"{key} must be true or false")
        if not VOICE_ID.match(voice_id):
            raise _Refuse("voice_not_found", f"A voice with voice_id {voice_id!r} was not found.")
        model = query.get("model_id", "eleven_multilingual_v2")
        if model not in MODELS:
            raise _Refuse("model_not_found", f"A model with model ID {model!r} does not exist.")
        if model.startswith("eleven_v3"):
            raise _Refuse("unsupported_model", "eleven_v3 is not supported over WebSocket.")
        fmt = query.get("output_format")
        if fmt not in RAW_FORMATS:
            raise _Refuse("invalid_output_format", f"fake serves raw formats only (got {fmt!r})")
        inactivity = query.get("inactivity_timeout", "20")
        if not inactivity.isdigit() or not 1 <= int(inactivity) <= 180:
            raise _Refuse("invalid_request", "inactivity_timeout must be an integer 1-180")
        lang = query.get("language_code")
        if lang is not None and not re.fullmatch(r"[a-z]{2,3}", lang):
            raise _Refuse("invalid_request", "invalid language_code")
        encoding, rate, _ = RAW_FORMATS[fmt]
        return encoding, rate, query.get("auto_mode") == "true"

    def _check_first(self, msg: dict[str, Any], header_ok: bool) -> None:
        for key in msg:
            if key not in FIRST_KEYS:
                raise _Refuse("invalid_message", f"unknown field {key!r} in the initial message")
        if msg.get("text") != " ":
            raise _Refuse("invalid_message", "the first message must have text set to a single space")
        in_body = msg.get("xi-api-key") or msg.get("xi_api_key")
        bearer = msg.get("authorization")
        if not header_ok and in_body != self.api_key and bearer != f"Bearer {self.api_key}":
            raise _Refuse("invalid_api_key", "Invalid API key")
        settings = msg.get("voice_settings")
        if settings is not None:
            for key, value in settings.items():
                lo, hi = SETTING_RANGES.get(key, (0.0, 1.0))
                ok = isinstance(value, bool) if key == "use_speaker_boost" else lo <= value <= hi
                if (key not in SETTING_RANGES and key != "use_speaker_boost") or not ok:
                    raise _Refuse("invalid_voice_settings", f"bad voice setting {key!r}")
        config = msg.get("generation_config")
        if config is not None:
            schedule = config.get("chunk_length_schedule")
            if set(config) != {"chunk_length_schedule"} or not isinstance(schedule, list):
                raise _Refuse("invalid_message", "generation_config.chunk_length_schedule must be a list")
            if not schedule or any(not isinstance(v, int) or not 5 <= v <= 500 for v in schedule):
                raise _Refuse("invalid_message", "chunk_length_schedule values must be 5-500")

    async def _endpoint(self, ws: WebSocket) -> None:
        if self.reject_status is not None:
            body = {"detail": {"status": "rejected", "message": f"fake refusal {self.reject_status}"}}
            await ws.send_denial_response(JSONResponse(body, status_code=self.reject_status))
            return
        conn = WsConnection(ws.url.path, dict(ws.query_params), {k.lower(): v for k, v in ws.headers.items()})
        self.connections.append(conn)
        await ws.accept()
        try:
            await self._session(ws, conn)
        except _Refuse as refuse:
            await self._send(ws, conn, {"message": refuse.message, "error": refuse.error, "code": 1008})
            await self._close(ws, conn, 1008, refuse.message[:120])
        finally:
            conn.gone.set()

    async def _session(self, ws: WebSocket, conn: WsConnection) -> None:
        encoding, rate, auto = self._check_query(conn.query, ws.path_params["voice_id"])
        header_ok = conn.headers.get("xi-api-key") == self.api_key
        buffer = ""
        first = True
        frames = 0
        while True:
            event = await ws.receive()
            if event["type"] == "websocket.disconnect":
                conn.client_close = event.get("code")
                return
            try:
                msg = orjson.loads(event.get("text") or b"")
            except orjson.JSONDecodeError:
                raise _Refuse("invalid_message", "messages must be JSON text frames") from None
            if not isinstance(msg, dict):
                raise _Refuse("invalid_message", "messages must be JSON objects")
            conn.messages.append(msg)
            if first:
                self._check_first(msg, header_ok)
                first = False
                continue
            for key in msg:
                if key not in TEXT_KEYS:
                    raise _Refuse("invalid_message", f"unknown field {key!r}")
            text = msg.get("text")
            if not isinstance(text, str):
                raise _Refuse("invalid_message", "text is required")
            if text == "":
                frames = await self._speak(ws, conn, buffer, encoding, rate, frames)
                if frames < 0:
                    return
                await self._send(ws, conn, {"isFinal": True})
                await self._close(ws, conn, 1000, "")
                return
            if not text[-1].isspace():
                raise _Refuse("invalid_message", "each text chunk must end with a space")
            buffer += text
            ready = ""
            if msg.get("flush") is True:
                ready, buffer = buffer, ""
            elif auto and (ends := list(_SENTENCE_END.finditer(buffer))):
                stop = ends[-1].end()
                ready, buffer = buffer[:stop], buffer[stop:]
            if ready.strip():
                frames = await self._speak(ws, conn, ready, encoding, rate, frames)
                if frames < 0:
                    return

    async def _speak(
        self, ws: WebSocket, conn: WsConnection, text: str, encoding: str, rate: int, frames: int
    ) -> int:
        """Send the tone for ``text``; returns the running frame count, or -1 once a fault ended things."""
        spoken = text.strip()
        if not spoken:
            return frames
        conn.spoken.append(spoken)
        audio = tone(encoding, rate, len(spoken) * self.ms_per_char)
        if self.first_byte_delay_s:
            await asyncio.sleep(self.first_byte_delay_s)
        if self.pace_chunk_ms > 0:
            size = max(1, int(rate * (2 if encoding == "pcm16" else 1) * self.pace_chunk_ms / 1000))
            chunks = [audio[i : i + size] for i in range(0, len(audio), size)]
        else:
            chunks = cut(audio, CHUNK_SIZES)
        for i, chunk in enumerate(chunks):
            if self.pace_chunk_ms > 0 and i:
                await asyncio.sleep(self.pace_chunk_ms / self.pace_speed / 1000.0)
            if self.error_after_frames is not None and frames >= self.error_after_frames:
                raise _Refuse("quota_exceeded", "This request exceeds your quota.")
            if self.drop_after_frames is not None and frames >= self.drop_after_frames:
                await self._close(ws, conn, 1011, "internal error")
                return -1
            if self.stall_after_frames is not None and frames >= self.stall_after_frames:
                while (await ws.receive())["type"] != "websocket.disconnect":
                    pass
                return -1
            if self.oversize_frame:
                chunk = b"\x00" * (600 * 1024)
            encoded = "!!not-base64!!" if self.bad_base64 else base64.b64encode(chunk).decode()
            await self._send(
                ws, conn, {"audio": encoded, "isFinal": None, "normalizedAlignment": None, "alignment": None}
            )
            frames += 1
            await asyncio.sleep(0)
        return frames

    @staticmethod
    async def _send(ws: WebSocket, conn: WsConnection, msg: dict[str, Any]) -> None:
        conn.sent.append({k: v for k, v in msg.items() if k != "audio"})
        with contextlib.suppress(RuntimeError, OSError):
            await ws.send_text(orjson.dumps(msg).decode())

    @staticmethod
    async def _close(ws: WebSocket, conn: WsConnection, code: int, reason: str) -> None:
        conn.server_close = code
        with contextlib.suppress(RuntimeError, OSError):
            await ws.close(code, reason)
