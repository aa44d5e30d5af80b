"""A strict fake of the ElevenLabs Conversational AI agent WebSocket (shared/protocols/elevenlabs-convai.md).

Routes: ``GET /v1/convai/conversation/get-signed-url`` (``xi-api-key``; returns a single-use ``ws://`` URL
back to this server) and ``WS /v1/convai/conversation?agent_id=...`` (signed URL, or the ``xi-api-key``
header). Refusals are HTTP statuses on the upgrade. The client must open with a valid
``conversation_initiation_client_data``; disallowed or malformed overrides close the socket with 1008.

The agent: ``conversation_initiation_metadata`` with the formats (the requested ones when the override asks
for them and ``honour_format_override``, else the agent's), then the first message as ``agent_response`` +
several ``audio`` events (a 440 Hz tone whose length follows the text). Caller audio runs through an energy
VAD on *audio* time (tests may stream faster than real time; the agent "speaks" for its reply's duration of
that clock). Speech onset while speaking -> ``interruption``, a few stale ``audio`` events of the
interrupted ids (the client must drop them) and ``agent_response_correction``. End of a voiced segment ->
``user_transcript`` (next scripted turn) and its reply; a scripted tool call waits for the matching
``client_tool_result`` (``{result}`` in the reply is replaced by it). Periodic ``ping``; the socket closes
(1008) once ``max_unanswered_pings`` are outstanding. Audio code is stdlib ``audioop``, not getpatter's.

Deliberately stricter than the real service: the initiation must be the first message, and unknown
client message types or keys close the socket.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import math
import re
import secrets
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FORMATS: dict[str, int] = {f"pcm_{r}": r for r in (8000, 16000, 22050, 24000, 44100, 48000)} | {
    "ulaw_8000": 8000
}
#: Override fields that must be enabled on the agent (``platform_settings.overrides``).
OVERRIDABLE = frozenset({"agent.prompt.prompt", "agent.first_message", "agent.language", "tts.voice_id"})
_SCHEMA: dict[str, set[str]] = {
    "": {"type", "conversation_config_override", "custom_llm_extra_body", "dynamic_variables", "user_id",
         "source_info"},
    "override": {"agent", "tts", "asr", "conversation", "turn"},
    "agent": {"first_message", "language", "prompt", "max_conversation_duration_message"},
    "prompt": {"prompt", "llm", "tool_ids", "native_mcp_server_ids", "knowledge_base"},
    "tts": {"voice_id", "model_id", "stability", "speed", "similarity_boost", "output_format"},
    "asr": {"keywords", "input_format"},
}  # fmt: skip
_QUERY = {"agent_id", "conversation_signature", "source", "version", "environment", "branch_id"}
_VOICE_ID = re.compile(r"[A-Za-z0-9]{20}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z]{2,4})?")
_WINDOW_MS = 10


@dataclass(frozen=True)
class Turn:
    """One scripted exchange: what the caller "said" and how the agent answers (tool first, if any)."""

    user: str
    reply: str = ""
    tool: str = ""
    tool_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Conversation:
    """Everything one connection sent and received; tests assert on it field by field."""

    conversation_id: str
    query: dict[str, str]
    headers: dict[str, str]
    auth: str  # "signature" | "header" | "public"
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    input_format: str = ""
    output_format: str = ""
    pings: list[int] = field(default_factory=list)
    pongs: list[int] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""

    def received_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") == kind]

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == kind]

    @property
    def audio_chunks(self) -> list[dict[str, Any]]:
        return [m for m in self.received if "user_audio_chunk" in m]


def tone(fmt: str, duration_ms: float) -> bytes:
    rate = FORMATS[fmt]
    n = int(rate * duration_ms / 1000)
    pcm = b"".join(
        int(8000 * math.sin(2 * math.pi * 440.0 * i / rate)).to_bytes(2, "little", signed=True)
        for i in range(n)
    )
    return audioop.lin2ulaw(pcm, 2) if fmt.startswith("ulaw") else pcm


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class _Dropped(Exception):
    pass


class FakeElevenLabsConvAI:
    """Serve ``.app`` with ``tests.fakes.server.running``; ``conversations`` records every connection.

    Fault knobs: ``reject_status`` (+ ``retry_after``) refuses every signed-URL request and upgrade;
    ``drop_after_events`` closes with 1011 right after that many server events; ``end_after_script`` ends
    the conversation with a normal 1000 close once the last scripted reply was sent.
    """

    def __init__(
        self,
        api_key: str = "el-test",
        agent_id: str = "agent_test",
        script: Iterable[Turn] = (),
        *,
        first_message: str = "Hello, this is the test agent.",
        agent_input_format: str = "pcm_16000",
        agent_output_format: str = "pcm_16000",
        honour_format_override: bool = True,
        allowed_overrides: Iterable[str] = OVERRIDABLE,
        public: bool = False,
        per_turn_event_ids: bool = False,
        ms_per_char: float = 20.0,
        chunk_ms: float = 100.0,
        stale_audio_events: int = 2,
        ping_interval_s: float | None = 0.5,
        max_unanswered_pings: int = 3,
        rms_threshold: float = 500.0,
        min_voiced_ms: int = 60,
        end_silence_ms: int = 300,
        reject_status: int | None = None,
        retry_after: float | None = None,
        drop_after_events: int | None = None,
        end_after_script: bool = False,
    ) -> None:
        self.api_key, self.agent_id, self.script = api_key, agent_id, list(script)
        self.first_message = first_message
        self.agent_input_format, self.agent_output_format = agent_input_format, agent_output_format
        self.honour_format_override = honour_format_override
        self.allowed_overrides = frozenset(allowed_overrides)
        self.public, self.per_turn_event_ids = public, per_turn_event_ids
        self.ms_per_char, self.chunk_ms, self.stale_audio_events = ms_per_char, chunk_ms, stale_audio_events
        self.ping_interval_s, self.max_unanswered_pings = ping_interval_s, max_unanswered_pings
        self.rms_threshold, self.min_voiced_ms, self.end_silence_ms = (
            rms_threshold,
            min_voiced_ms,
            end_silence_ms,
        )
        self.reject_status, self.retry_after = reject_status, retry_after
        self.drop_after_events, self.end_after_script = drop_after_events, end_after_script
        self.conversations: list[Conversation] = []
        self.signed_url_requests: list[dict[str, str]] = []
        self.refusals: list[tuple[int, str]] = []
        self._signatures: dict[str, str] = {}
        self.app = Starlette(
            routes=[
                Route("/v1/convai/conversation/get-signed-url", self._signed_url, methods=["GET"]),
                WebSocketRoute("/v1/convai/conversation", self._conversation),
            ]
        )

    def reply_ms(self, text: str) -> float:
        """Length of the tone spoken for ``text``: follows the text, never fewer than three chunks."""
        return max(len(text) * self.ms_per_char, 3 * self.chunk_ms)

    def _refuse(self, status: int, message: str) -> JSONResponse:
        self.refusals.append((status, message))
        headers = {"retry-after": f"{self.retry_after:g}"} if status == 429 and self.retry_after else None
        return JSONResponse({"detail": {"status": "error", "message": message}}, status, headers=headers)

    async def _signed_url(self, request: Request) -> JSONResponse:
        self.signed_url_requests.append(dict(request.headers))
        if self.reject_status is not None:
            return self._refuse(self.reject_status, "injected refusal")
        if request.headers.get("xi-api-key") != self.api_key:
            return self._refuse(401, "Invalid API key")
        agent = request.query_params.get("agent_id")
        if agent != self.agent_id:
            return self._refuse(404, f"Agent {agent!r} not found")
        token = secrets.token_urlsafe(24)
        self._signatures[token] = agent
        host = request.headers["host"]
        url = f"ws://{host}/v1/convai/conversation?agent_id={agent}&conversation_signature={token}"
        return JSONResponse({"signed_url": url})

    def _authorize(self, ws: WebSocket) -> tuple[int, str] | str:
        """The auth mode used, or the refusal (status, message)."""
        if self.reject_status is not None:
            return self.reject_status, "injected refusal"
        query = ws.query_params
        unknown = set(query.keys()) - _QUERY
        if unknown:
            return 400, f"Unknown query parameters {sorted(unknown)}"
        if query.get("agent_id") != self.agent_id:
            return 404, "Agent not found"
        signature = query.get("conversation_signature")
        if signature is not None:
            ok = self._signatures.pop(signature, None) == self.agent_id
            return "signature" if ok else (401, "Invalid or expired conversation signature")
        key = ws.headers.get("xi-api-key")
        if key is not None:
            return "header" if key == self.api_key else (401, "Invalid API key")
        return "public" if self.public else (403, "This agent requires authentication")

    async def _conversation(self, ws: WebSocket) -> None:
        auth = self._authorize(ws)
        if isinstance(auth, tuple):
            await ws.send_denial_response(self._refuse(*auth))
            return
        conv = Conversation(f"conv_{secrets.token_hex(8)}", dict(ws.query_params), dict(ws.headers), auth)
        self.conversations.append(conv)
        await ws.accept()
        await _Session(self, ws, conv).run()


class _Session:
    def __init__(self, fake: FakeElevenLabsConvAI, ws: WebSocket, conv: Conversation) -> None:
        self.fake, self.ws, self.conv = fake, ws, conv
        self.lock = asyncio.Lock()
        self.events_sent = 0
        self.event_ids = itertools.count(1)
        self.ping_ids = itertools.count(1)
        self.outstanding: set[int] = set()
        self.turns = 0  # scripted turns taken
        self.first_message = fake.first_message
        self.pending_tool: tuple[str, Turn] | None = None
        # Caller-audio clock and VAD state (ms of audio received).
        self.rate, self.mulaw, self.pending = 16000, False, b""
        self.t_ms = self.voiced_run = self.silence = self.seg_start = 0
        self.in_segment = False
        # The agent's current reply: text, start on the caller clock, duration, its audio events.
        self.reply_text, self.reply_start, self.reply_ms = "", 0.0, 0.0
        self.reply_events: list[dict[str, Any]] = []

    async def run(self) -> None:
        pinger: asyncio.Task[None] | None = None
        try:
            self._start(await self._receive())
            await self.send(self._metadata())
            if self.fake.ping_interval_s is not None:
                pinger = asyncio.create_task(self._ping_loop(self.fake.ping_interval_s))
            if self.first_message:
                await self.speak(self.first_message)
            while True:
                await self._on_message(await self._receive())
        except _Close as close:
            await self.close(close.code, close.reason)
        except _Dropped:
            pass
        finally:
            if pinger is not None:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)

    async def close(self, code: int, reason: str) -> None:
        self.conv.close_code, self.conv.close_reason = code, reason
        with contextlib.suppress(RuntimeError):
            await self.ws.close(code, reason)

    async def _receive(self) -> dict[str, Any]:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            if self.conv.close_code is None:
                self.conv.close_code = message.get("code")
            raise _Dropped
        text = message.get("text")
        try:
            data = orjson.loads(text) if text is not None else None
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise _Close(1008, "Invalid message received")
        self.conv.received.append(data)
        return data

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if self.conv.close_code is not None:
                raise _Dropped
            self.conv.sent.append(message)
            try:
                await self.ws.send_text(orjson.dumps(message).decode())
            except (WebSocketDisconnect, RuntimeError):
                raise _Dropped from None
            self.events_sent += 1
            if self.fake.drop_after_events is not None and self.events_sent >= self.fake.drop_after_events:
                await self.close(1011, "internal error")
                raise _Dropped

    # -- initiation ----------------------------------------------------------------------------------

    def _start(self, init: dict[str, Any]) -> None:
        if init.get("type") != "conversation_initiation_client_data":
            raise _Close(1008, "Expected conversation_initiation_client_data first")
        _keys(init, "")
        override = init.get("conversation_config_override", {})
        _keys(override, "override")
        agent, tts, asr = (override.get(k, {}) for k in ("agent", "tts", "asr"))
        for part, section in (
            (agent, "agent"),
            (tts, "tts"),
            (asr, "asr"),
            (agent.get("prompt", {}), "prompt"),
        ):
            _keys(part, section)
        sent = {
            "agent.first_message": agent.get("first_message"),
            "agent.language": agent.get("language"),
            "agent.prompt.prompt": agent.get("prompt", {}).get("prompt"),
            "tts.voice_id": tts.get("voice_id"),
        }
        for name, value in sent.items():
            if value is None:
                continue
            if not isinstance(value, str):
                raise _Close(1008, f"{name} must be a string")
            if name not in self.fake.allowed_overrides:
                raise _Close(1008, f"Override for field '{name}' is not allowed by config.")
        if sent["tts.voice_id"] is not None and not _VOICE_ID.fullmatch(sent["tts.voice_id"]):
            raise _Close(1008, f"Voice {sent['tts.voice_id']!r} not found")
        if sent["agent.language"] is not None and not _LANGUAGE.fullmatch(sent["agent.language"]):
            raise _Close(1008, f"Unsupported language {sent['agent.language']!r}")
        variables = init.get("dynamic_variables", {})
        if not isinstance(variables, dict) or not all(
            isinstance(v, str | int | float) for v in variables.values()
        ):
            raise _Close(1008, "dynamic_variables must map names to strings, numbers or booleans")
        self.conv.input_format, self.conv.output_format = (
            self.fake.agent_input_format,
            self.fake.agent_output_format,
        )
        for value, attr in (
            (asr.get("input_format"), "input_format"),
            (tts.get("output_format"), "output_format"),
        ):
            if value is not None and value not in FORMATS:
                raise _Close(1008, f"Unsupported audio format {value!r}")
            if value is not None and self.fake.honour_format_override:
                setattr(self.conv, attr, value)
        if sent["agent.first_message"] is not None:
            self.first_message = sent["agent.first_message"]
        self.rate, self.mulaw = FORMATS[self.conv.input_format], self.conv.input_format.startswith("ulaw")

    def _metadata(self) -> dict[str, Any]:
        event = {
            "conversation_id": self.conv.conversation_id,
            "agent_output_audio_format": self.conv.output_format,
            "user_input_audio_format": self.conv.input_format,
        }
        return {"type": "conversation_initiation_metadata", "conversation_initiation_metadata_event": event}

    # -- client messages -----------------------------------------------------------------------------

    async def _on_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if "user_audio_chunk" in msg:
            await self._on_audio(msg)
        elif kind == "pong":
            if set(msg) != {"type", "event_id"} or msg["event_id"] not in self.outstanding:
                raise _Close(1008, "pong for an unknown ping")
            self.outstanding.discard(msg["event_id"])
            self.conv.pongs.append(msg["event_id"])
        elif kind == "client_tool_result":
            await self._on_tool_result(msg)
        elif kind in ("user_message", "contextual_update"):
            if set(msg) != {"type", "text"} or not isinstance(msg["text"], str):
                raise _Close(1008, f"Invalid {kind}")
            if kind == "user_message":
                await self.take_turn(self.next_turn(), typed=True)
        elif kind != "user_activity" or set(msg) != {"type"}:
            raise _Close(1008, "Invalid message received")

    async def _on_tool_result(self, msg: dict[str, Any]) -> None:
        if set(msg) != {"type", "tool_call_id", "result", "is_error"}:
            raise _Close(1008, "client_tool_result needs exactly tool_call_id, result, is_error")
        if not isinstance(msg["result"], str) or not isinstance(msg["is_error"], bool):
            raise _Close(1008, "client_tool_result: result must be a string and is_error a boolean")
        if self.pending_tool is None or msg["tool_call_id"] != self.pending_tool[0]:
            raise _Close(1008, "client_tool_result for an unknown tool_call_id")
        turn = self.pending_tool[1]
        self.pending_tool = None
        if turn.reply:
            await self.speak(turn.reply.replace("{result}", msg["result"]))
        await self._maybe_end()

    async def _on_audio(self, msg: dict[str, Any]) -> None:
        if set(msg) != {"user_audio_chunk"} or not isinstance(msg["user_audio_chunk"], str):
            raise _Close(1008, "user_audio_chunk must be the only key, a base64 string")
        try:
            data = base64.b64decode(msg["user_audio_chunk"], validate=True)
        except binascii.Error:
            raise _Close(1008, "user_audio_chunk is not base64") from None
        if not data or (not self.mulaw and len(data) % 2):
            raise _Close(1008, "user_audio_chunk must hold whole samples")
        self.conv.audio += data
        raw = self.pending + (audioop.ulaw2lin(data, 2) if self.mulaw else data)
        window = self.rate * _WINDOW_MS // 1000 * 2
        usable = len(raw) - len(raw) % window
        self.pending = raw[usable:]
        for i in range(0, usable, window):
            await self._window(audioop.rms(raw[i : i + window], 2))

    async def _window(self, rms: int) -> None:
        self.t_ms += _WINDOW_MS
        if rms >= self.fake.rms_threshold:
            self.silence = 0
            self.voiced_run += _WINDOW_MS
            if not self.in_segment and self.voiced_run >= self.fake.min_voiced_ms:
                self.in_segment, self.seg_start = True, self.t_ms - self.voiced_run
                if self.seg_start < self.reply_start + self.reply_ms:
                    await self._interrupt()
            return
        self.voiced_run = 0
        self.silence += _WINDOW_MS
        if self.in_segment and self.silence >= self.fake.end_silence_ms:
            self.in_segment = False
            await self.take_turn(self.next_turn())

    # -- the agent -----------------------------------------------------------------------------------

    async def _interrupt(self) -> None:
        heard = max(0.0, self.seg_start - self.reply_start) / self.reply_ms
        last_id = self.reply_events[-1]["audio_event"]["event_id"]
        self.reply_ms = 0.0
        await self.send({"type": "interruption", "interruption_event": {"event_id": last_id}})
        for stale in (
            self.reply_events[-self.fake.stale_audio_events :] if self.fake.stale_audio_events else []
        ):
            await self.send(stale)
        words = self.reply_text.split()
        corrected = " ".join(words[: int(len(words) * min(heard, 1.0))])
        event = {"original_agent_response": self.reply_text, "corrected_agent_response": corrected}
        await self.send({"type": "agent_response_correction", "agent_response_correction_event": event})

    def next_turn(self) -> Turn | None:
        self.turns += 1
        return self.fake.script[self.turns - 1] if self.turns <= len(self.fake.script) else None

    async def take_turn(self, turn: Turn | None, *, typed: bool = False) -> None:
        """A user turn ended (spoken: ``user_transcript`` first) or arrived typed; an exhausted script is
        silence."""
        if turn is None:
            return
        if not typed:
            event = {"user_transcript": turn.user}
            await self.send({"type": "user_transcript", "user_transcription_event": event})
        if turn.tool:
            call_id = f"toolu_{secrets.token_hex(6)}"
            self.pending_tool = (call_id, turn)
            call = {"tool_name": turn.tool, "tool_call_id": call_id, "parameters": turn.tool_args}
            await self.send({"type": "client_tool_call", "client_tool_call": call})
        elif turn.reply:
            await self.speak(turn.reply)
            await self._maybe_end()

    async def _maybe_end(self) -> None:
        if self.fake.end_after_script and self.turns >= len(self.fake.script):
            raise _Close(1000, "conversation ended by the agent")

    async def speak(self, text: str) -> None:
        self.reply_text, self.reply_start, self.reply_ms = text, float(self.t_ms), self.fake.reply_ms(text)
        await self.send({"type": "agent_response", "agent_response_event": {"agent_response": text}})
        audio = tone(self.conv.output_format, self.reply_ms)
        step = max(1, len(audio) * int(self.fake.chunk_ms) // int(self.reply_ms))
        step -= step % (1 if self.conv.output_format.startswith("ulaw") else 2)
        turn_id = next(self.event_ids)
        self.reply_events = []
        for i in range(0, len(audio), step):
            event_id = turn_id if self.fake.per_turn_event_ids or i == 0 else next(self.event_ids)
            event = {"audio_base_64": base64.b64encode(audio[i : i + step]).decode(), "event_id": event_id}
            self.reply_events.append({"type": "audio", "audio_event": event})
            await self.send(self.reply_events[-1])

    async def _ping_loop(self, interval: float) -> None:
        with contextlib.suppress(_Dropped, RuntimeError):
            while True:
                if len(self.outstanding) >= self.fake.max_unanswered_pings:
                    await self.close(1008, "ping timeout: no pong received")
                    return
                ping_id = next(self.ping_ids)
                self.outstanding.add(ping_id)
                self.conv.pings.append(ping_id)
                await self.send({"type": "ping", "ping_event": {"event_id": ping_id, "ping_ms": 12}})
                await asyncio.sleep(interval)


def _keys(obj: Any, section: str) -> None:
    if not isinstance(obj, dict):
        raise _Close(1008, f"{section or 'message'} must be an object")
    unknown = set(obj) - _SCHEMA[section]
    if unknown:
        raise _Close(1008, f"Unknown field(s) {sorted(unknown)} in {section or 'message'}")
