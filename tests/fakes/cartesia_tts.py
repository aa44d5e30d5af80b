"""Fake Cartesia TTS WebSocket ``/tts/websocket`` (protocols/tts.md §2.2).

Strict where the API is: the key in ``X-API-Key`` / ``Authorization: Bearer`` / ``?api_key=`` and a version in
``Cartesia-Version`` / ``?cartesia_version=`` (else the upgrade is refused 401/400); every generation request
repeats ``model_id``, ``voice`` (``{"mode": "id", "id": <uuid>}``) and ``output_format``; unknown fields, bad
ranges and non-raw containers are answered with an ``error`` message for that context.

Each context buffers transcripts while ``continue`` is true; ``continue: false`` speaks the buffer: a tone of
``len(text.strip()) * ms_per_char`` ms in the requested encoding/rate, as ``chunk`` messages (odd sizes),
then ``done``. ``{"context_id", "cancel": true}`` stops a context at once (recorded in ``cancelled``).

Fault knobs: ``reject_status``, ``error_status`` (an ``error`` reply for every request),
``stall_after_frames`` (until ``resume`` is set), ``drop_after_frames`` (close 1011), ``bad_base64``;
:meth:`FakeCartesiaTTS.drop` closes one connection (1011) from the server side.
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

from tests.fakes.openai_audio import cut, tone

MODELS = re.compile(
    r"^(sonic-2|sonic-3|sonic-3\.5|sonic-latest|sonic-english|sonic-turbo)(-\d{4}-\d{2}-\d{2})?$"
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ENCODINGS = {"pcm_s16le": "pcm16", "pcm_mulaw": "mulaw", "pcm_alaw": "alaw"}
ALL_ENCODINGS = {*ENCODINGS, "pcm_f32le"}
RATES = {8000, 16000, 22050, 24000, 44100, 48000}
LANGUAGES = {"en", "fr", "de", "es", "pt", "zh", "ja", "hi", "it", "ko", "nl", "pl", "ru", "sv", "tr"}
REQUEST_KEYS = {
    "model_id", "transcript", "voice", "output_format", "language", "context_id", "continue", "duration",
    "add_timestamps", "add_phoneme_timestamps", "use_normalized_timestamps", "max_buffer_delay_ms", "flush",
    "speed", "generation_config", "pronunciation_dict_id",
}  # fmt: skip
SPEED_NAMES = {"slowest", "slow", "normal", "fast", "fastest"}
CHUNK_SIZES = (1, 1023, 777, 4097, 333)


class _Bad(Exception):
    pass


@dataclass
class CartesiaConnection:
    headers: dict[str, str]
    query: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    transcripts: dict[str, str] = field(default_factory=dict)
    gone: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class FakeCartesiaTTS:
    api_key: str = "test-key"
    ms_per_char: float = 40.0
    reject_status: int | None = None
    error_status: int | None = None
    stall_after_frames: int | None = None
    drop_after_frames: int | None = None
    bad_base64: bool = False
    connections: list[CartesiaConnection] = field(default_factory=list)
    cancel_seen: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set to let contexts stalled by ``stall_after_frames`` go on.
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    _sockets: list[WebSocket] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[WebSocketRoute("/tts/websocket", self._endpoint)])

    async def drop(self, index: int) -> None:
        """Close connection ``index`` (in arrival order) with 1011, as a server fault would."""
        with contextlib.suppress(RuntimeError, OSError):
            await self._sockets[index].close(1011, "internal error")
        await self.connections[index].gone.wait()

    def _refusal(self, ws: WebSocket) -> tuple[int, str] | None:
        if self.reject_status is not None:
            return self.reject_status, f"fake refusal {self.reject_status}"
        q = ws.query_params
        key = ws.headers.get("x-api-key") or q.get("api_key")
        bearer = ws.headers.get("authorization", "")
        if key != self.api_key and bearer != f"Bearer {self.api_key}":
            return 401, "Invalid API key"
        version = ws.headers.get("cartesia-version") or q.get("cartesia_version")
        if not version or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", version):
            return 400, "Cartesia-Version header is required"
        return None

    async def _endpoint(self, ws: WebSocket) -> None:
        refusal = self._refusal(ws)
        if refusal is not None:
            status, message = refusal
            await ws.send_denial_response(JSONResponse({"error": message}, status_code=status))
            return
        conn = CartesiaConnection({k.lower(): v for k, v in ws.headers.items()}, dict(ws.query_params))
        self.connections.append(conn)
        self._sockets.append(ws)
        await ws.accept()
        buffers: dict[str, str] = {}
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                event = await ws.receive()
                if event["type"] == "websocket.disconnect":
                    return
                try:
                    msg = orjson.loads(event.get("text") or b"")
                except orjson.JSONDecodeError:
                    await ws.close(1003, "invalid JSON")
                    return
                conn.messages.append(msg)
                ctx = str(msg.get("context_id", ""))
                if msg.get("cancel") is True:
                    conn.cancelled.append(ctx)
                    if (task := tasks.pop(ctx, None)) is not None:
                        task.cancel()
                    self.cancel_seen.set()
                    continue
                try:
                    spec = self._check(msg)
                except _Bad as bad:
                    await self._send(ws, conn, self._error(ctx, 400, str(bad)))
                    continue
                if self.error_status is not None:
                    await self._send(ws, conn, self._error(ctx, self.error_status, "fake fault"))
                    continue
                buffers[ctx] = buffers.get(ctx, "") + msg["transcript"]
                if msg.get("continue", False) is False:
                    text = buffers.pop(ctx).strip()
                    conn.transcripts[ctx] = text
                    tasks[ctx] = asyncio.create_task(self._speak(ws, conn, ctx, text, *spec))
        finally:
            for task in tasks.values():
                task.cancel()
            conn.gone.set()

    def _check(self, msg: dict[str, Any]) -> tuple[str, int]:
        for key in msg:
            if key not in REQUEST_KEYS:
                raise _Bad(f"unknown field {key!r}")
        if not isinstance(msg.get("context_id"), str) or not msg["context_id"]:
            raise _Bad("context_id is required")
        if not MODELS.match(str(msg.get("model_id"))):
            raise _Bad(f"invalid model_id {msg.get('model_id')!r}")
        if not isinstance(msg.get("transcript"), str):
            raise _Bad("transcript is required")
        voice = msg.get("voice")
        if not isinstance(voice, dict) or voice.get("mode") != "id" or not UUID.match(str(voice.get("id"))):
            raise _Bad("voice must be {'mode': 'id', 'id': <uuid>}")
        fmt = msg.get("output_format")
        if not isinstance(fmt, dict) or set(fmt) != {"container", "encoding", "sample_rate"}:
            raise _Bad("output_format must have container, encoding and sample_rate")
        if (
            fmt["container"] != "raw"
            or fmt["encoding"] not in ALL_ENCODINGS
            or fmt["sample_rate"] not in RATES
        ):
            raise _Bad(f"invalid output_format {fmt}")
        if fmt["encoding"] not in ENCODINGS:
            raise _Bad("fake serves pcm_s16le/pcm_mulaw/pcm_alaw only")
        if "language" in msg and msg["language"] not in LANGUAGES:
            raise _Bad(f"unsupported language {msg['language']!r}")
        if "continue" in msg and not isinstance(msg["continue"], bool):
            raise _Bad("continue must be a boolean")
        if "speed" in msg and msg["speed"] not in SPEED_NAMES:
            raise _Bad("speed must be slowest|slow|normal|fast|fastest")
        config = msg.get("generation_config")
        if config is not None:
            if not isinstance(config, dict) or not set(config) <= {"speed", "volume", "emotion"}:
                raise _Bad("generation_config accepts speed, volume, emotion")
            if "speed" in config and not 0.6 <= config["speed"] <= 2.0:
                raise _Bad("generation_config.speed must be 0.6-2.0")
            if "volume" in config and not 0.5 <= config["volume"] <= 2.0:
                raise _Bad("generation_config.volume must be 0.5-2.0")
            if "emotion" in config and not isinstance(config["emotion"], str):
                raise _Bad("generation_config.emotion must be a string")
        return ENCODINGS[fmt["encoding"]], fmt["sample_rate"]

    @staticmethod
    def _error(ctx: str, status: int, message: str) -> dict[str, Any]:
        return {
            "type": "error",
            "context_id": ctx,
            "done": True,
            "status_code": status,
            "title": "Bad request" if status == 400 else "Error",
            "message": message,
            "error_code": "invalid_request" if status == 400 else "fault",
        }

    async def _speak(
        self, ws: WebSocket, conn: CartesiaConnection, ctx: str, text: str, encoding: str, rate: int
    ) -> None:
        audio = tone(encoding, rate, len(text) * self.ms_per_char)
        for frames, chunk in enumerate(cut(audio, CHUNK_SIZES)):
            if self.stall_after_frames is not None and frames >= self.stall_after_frames:
                await self.resume.wait()
            if self.drop_after_frames is not None and frames >= self.drop_after_frames:
                with contextlib.suppress(RuntimeError, OSError):
                    await ws.close(1011, "internal error")
                return
            data = "%%bad%%" if self.bad_base64 else base64.b64encode(chunk).decode()
            msg = {"type": "chunk", "data": data, "done": False, "status_code": 206, "step_time": 1.5}
            await self._send(ws, conn, {**msg, "context_id": ctx})
            await asyncio.sleep(0)
        conn.completed.append(ctx)
        await self._send(ws, conn, {"type": "done", "context_id": ctx, "done": True, "status_code": 200})

    @staticmethod
    async def _send(ws: WebSocket, conn: CartesiaConnection, msg: dict[str, Any]) -> None:
        conn.replies.append({k: v for k, v in msg.items() if k != "data"})
        with contextlib.suppress(RuntimeError, OSError):
            await ws.send_text(orjson.dumps(msg).decode())
