"""A strict fake of the Speechmatics real-time API (``/v2``; shared/protocols/stt.md section 5).

Checks: ``Authorization: Bearer <key>`` (401 on the upgrade otherwise); the first message must be a valid
``StartRecognition`` (raw ``audio_format`` with known encoding and ``sample_rate``, a ``language``,
``max_delay`` within 0.7..4.0, known keys only) or it gets ``Error`` ``invalid_config`` and a close. Each
binary frame is acknowledged with ``AudioAdded`` (``seq_no`` counting from 1). Voiced segments (stdlib
``audioop`` + shared segmenter, audio time) become scripted utterances: ``AddPartialTranscript``s while
voiced (with ``enable_partials``), then ``AddTranscript`` and -- when ``conversation_config`` asks for it --
``EndOfUtterance``. ``ForceEndOfUtterance`` does the same at once. ``EndOfStream`` must carry the right
``last_seq_no``; then ``EndOfTranscript`` and a 1000 close.

Fault knobs: ``reject_status``, ``auth_error`` (accept the socket, answer StartRecognition with ``Error``
``not_authorised``), ``drop_after_seconds`` (close 1011), ``error_after_seconds`` (``Error`` then close).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Unpack

import orjson
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tests.fakes._scripted_stt import ScriptedSTTFake, STTFaults
from tests.fakes._segmenter import SegEvent, Segmenter, decode

ENCODINGS = {"pcm_s16le": ("pcm16", 2), "mulaw": ("mulaw", 1)}
CONFIG_KEYS = {
    "language", "enable_partials", "max_delay", "max_delay_mode", "operating_point", "conversation_config",
    "diarization", "additional_vocab", "punctuation_overrides", "enable_entities", "output_locale",
}  # fmt: skip


@dataclass
class Connection:
    headers: dict[str, str]
    start: dict[str, Any] | None = None
    audio: bytearray = field(default_factory=bytearray)
    frames: int = 0
    controls: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("message") == kind]


def check_start(msg: Any) -> str | None:
    if not isinstance(msg, dict) or msg.get("message") != "StartRecognition":
        return "The first message must be StartRecognition."
    if set(msg) - {"message", "audio_format", "transcription_config", "translation_config"}:
        return "Unknown StartRecognition field."
    fmt = msg.get("audio_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "raw" or fmt.get("encoding") not in ENCODINGS:
        return "audio_format must be raw with a supported encoding."
    if not isinstance(fmt.get("sample_rate"), int):
        return "audio_format.sample_rate is required for raw audio."
    cfg = msg.get("transcription_config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("language"), str):
        return "transcription_config.language is required."
    if set(cfg) - CONFIG_KEYS:
        return f"Unknown transcription_config field(s): {sorted(set(cfg) - CONFIG_KEYS)}."
    if not 0.7 <= cfg.get("max_delay", 1.0) <= 4.0:
        return "max_delay must be within 0.7..4.0."
    if cfg.get("max_delay_mode", "flexible") not in ("fixed", "flexible"):
        return "max_delay_mode must be fixed or flexible."
    if cfg.get("diarization", "none") not in ("none", "speaker"):
        return "diarization must be none or speaker."
    conv = cfg.get("conversation_config", {})
    if not isinstance(conv, dict) or not 0 < conv.get("end_of_utterance_silence_trigger", 0.5) <= 2:
        return "end_of_utterance_silence_trigger must be in (0, 2]."
    return None


class FakeSpeechmatics(ScriptedSTTFake[Connection]):
    def __init__(
        self,
        api_key: str = "sm-test",
        utterances: Iterable[str] = (),
        *,
        auth_error: bool = False,
        **faults: Unpack[STTFaults],
    ) -> None:
        super().__init__(api_key, utterances, **faults)
        self.auth_error = auth_error
        self.app = Starlette(routes=[WebSocketRoute("/v2", self._session)])

    async def _session(self, ws: WebSocket) -> None:
        status = self.reject_status
        if (
            status is None
            and not self.auth_error
            and ws.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            status = 401
        if status is not None:
            self.refusals.append((status, "refused"))
            await ws.send_denial_response(JSONResponse({"detail": "Unauthorized"}, status_code=status))
            return
        conn = Connection(dict(ws.headers))
        self.connections.append(conn)
        await ws.accept()
        await _Session(self, conn, ws).run()


class _Session:
    def __init__(self, fake: FakeSpeechmatics, conn: Connection, ws: WebSocket) -> None:
        self.fake, self.conn, self.ws = fake, conn, ws
        self.text = ""
        self.t0 = 0

    async def send(self, msg: dict[str, Any]) -> None:
        self.conn.sent.append(msg)
        await self.ws.send_text(orjson.dumps(msg).decode())

    async def close(self, code: int, reason: str = "") -> None:
        self.conn.close_code = code
        with contextlib.suppress(RuntimeError):
            await self.ws.close(code, reason)

    async def error(self, kind: str, reason: str, code: int) -> None:
        await self.send({"message": "Error", "type": kind, "reason": reason})
        await self.close(code, kind)

    async def run(self) -> None:
        first = await self.ws.receive()
        try:
            start = orjson.loads(first.get("text") or "null")
        except orjson.JSONDecodeError:
            start = None
        if self.fake.auth_error:
            await self.error("not_authorised", "Permission denied", 4001)
            return
        problem = check_start(start)
        if problem is not None:
            await self.error("invalid_config", problem, 4003)
            return
        self.conn.start = start
        fmt, cfg = start["audio_format"], start["transcription_config"]
        encoding, width = ENCODINGS[fmt["encoding"]]
        rate = fmt["sample_rate"]
        conv = cfg.get("conversation_config")
        self.eou = conv is not None
        self.partials = bool(cfg.get("enable_partials"))
        silence_ms = int(1000 * conv["end_of_utterance_silence_trigger"]) if conv else 700
        seg = Segmenter(rate, end_silence_ms=silence_ms, progress_ms=self.fake.progress_ms)
        await self.send({"message": "RecognitionStarted", "id": str(uuid.uuid4()), "language_pack_info": {}})
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.conn.close_code = message.get("code")
                return
            data: bytes | None = message.get("bytes")
            if data is not None:
                self.conn.frames += 1
                self.conn.audio += data
                await self.send({"message": "AudioAdded", "seq_no": self.conn.frames})
                for ev in seg.feed(decode(encoding, data)):
                    await self._on_segment(ev)
                seconds = len(self.conn.audio) / (width * rate)
                if self.fake.drop_after_seconds is not None and seconds >= self.fake.drop_after_seconds:
                    await self.close(1011, "internal error")
                    return
                if self.fake.error_after_seconds is not None and seconds >= self.fake.error_after_seconds:
                    await self.error("internal_error", "Injected failure.", 1011)
                    return
                continue
            control = orjson.loads(message.get("text") or "null")
            self.conn.controls.append(control)
            kind = control.get("message") if isinstance(control, dict) else None
            if kind == "ForceEndOfUtterance":
                forced = seg.force_end()
                if forced is not None:
                    await self._final(forced, eou=True)
            elif kind == "EndOfStream":
                if control.get("last_seq_no") != self.conn.frames:
                    await self.error("protocol_error", "last_seq_no does not match the audio received", 1008)
                    return
                forced = seg.force_end()
                if forced is not None:
                    await self._final(forced, eou=False)
                await self.send({"message": "EndOfTranscript"})
                await self.close(1000)
                return
            else:
                await self.error("protocol_error", f"Unexpected message {kind!r}", 1008)
                return

    async def _on_segment(self, ev: SegEvent) -> None:
        if ev.kind == "start":
            self.text = self.fake.next_utterance()
        if ev.kind == "end":
            await self._final(ev, eou=self.eou)
        elif self.partials and self.text:
            words = self.text.split()
            shown = min(len(words), 1 + (ev.t_ms - ev.start_ms) // self.fake.progress_ms)
            await self.send(self._transcript("AddPartialTranscript", words[:shown], ev))

    async def _final(self, ev: SegEvent, *, eou: bool) -> None:
        if self.text:
            await self.send(self._transcript("AddTranscript", self.text.split(), ev))
        if eou:
            at = ev.t_ms / 1000
            await self.send({"message": "EndOfUtterance", "metadata": {"start_time": at, "end_time": at}})
        self.text = ""

    @staticmethod
    def _transcript(kind: str, words: list[str], ev: SegEvent) -> dict[str, Any]:
        results = [
            {
                "type": "word",
                "start_time": (ev.start_ms + 100 * i) / 1000,
                "end_time": (ev.start_ms + 100 * (i + 1)) / 1000,
                "alternatives": [
                    {"content": w, "confidence": 0.5 if kind == "AddPartialTranscript" else 0.75}
                ],
            }
            for i, w in enumerate(words)
        ]
        metadata = {
            "transcript": " ".join(words) + " ",
            "start_time": ev.start_ms / 1000,
            "end_time": ev.t_ms / 1000,
        }
        return {"message": kind, "format": "2.9", "metadata": metadata, "results": results}
