"""A strict fake of Cartesia's manual-finalize STT WebSocket (``/stt/websocket``; protocols/stt.md s. 3).

Checks: ``X-API-Key`` (or ``Authorization: Bearer``) equal to the key, a ``Cartesia-Version`` header,
known ``model``, ``encoding`` and ``sample_rate``, ISO ``language``; commands are the plain-text strings
``finalize`` and ``close`` (legacy ``done`` accepted); anything else closes 1003. Each voiced segment (stdlib
``audioop`` + shared energy segmenter, audio time) becomes the next scripted utterance, sent as *delta*
``transcript`` messages (``is_final:false`` growing, then ``is_final:true``); ``finalize`` fixes the open
segment and answers ``flush_done``; ``close`` flushes and answers ``done``, then closes 1000.

Fault knobs: ``reject_status`` (HTTP refusal), ``drop_after_seconds`` (close 1011), ``error_after_seconds``
(an ``error`` message, then close 1011).
"""

from __future__ import annotations

import contextlib
import re
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

MODELS = {"ink-whisper", "ink-2"}
ENCODINGS = {"pcm_s16le": ("pcm16", 2), "pcm_mulaw": ("mulaw", 1), "pcm_alaw": ("alaw", 1)}
RATES = {8000, 16000, 24000, 44100, 48000}
KNOWN = {"model", "language", "encoding", "sample_rate", "min_volume", "max_silence_duration_secs", "keyterm"}


@dataclass
class Connection:
    query_items: list[tuple[str, str]]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    commands: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    @property
    def query(self) -> dict[str, str]:
        return dict(self.query_items)

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == kind]


class FakeCartesiaSTT(ScriptedSTTFake[Connection]):
    def __init__(
        self,
        api_key: str = "sk_car_test",
        utterances: Iterable[str] = (),
        **faults: Unpack[STTFaults],
    ) -> None:
        super().__init__(api_key, utterances, **faults)
        self.app = Starlette(routes=[WebSocketRoute("/stt/websocket", self._session)])

    def _refusal(self, ws: WebSocket) -> tuple[int, str] | None:
        if self.reject_status is not None:
            return self.reject_status, "injected refusal"
        auth = ws.headers.get("x-api-key") or (ws.headers.get("authorization") or "").removeprefix("Bearer ")
        if auth != self.api_key:
            return 401, "Invalid API key"
        if not ws.headers.get("cartesia-version"):
            return 400, "Cartesia-Version header is required"
        items = ws.query_params.multi_items()
        for name, _ in items:
            if name not in KNOWN or (name != "keyterm" and [k for k, _ in items].count(name) > 1):
                return 400, f"Invalid query parameter {name!r}"
        q = dict(items)
        if q.get("model") not in MODELS:
            return 400, "model is required (ink-whisper, ink-2)"
        if q.get("encoding") not in ENCODINGS:
            return 400, "unsupported or missing encoding"
        if not q.get("sample_rate", "").isdigit() or int(q["sample_rate"]) not in RATES:
            return 400, "unsupported or missing sample_rate"
        if not re.fullmatch(r"[a-z]{2}", q.get("language", "")):
            return 400, "language must be an ISO-639-1 code"
        return None

    async def _session(self, ws: WebSocket) -> None:
        refusal = self._refusal(ws)
        if refusal is not None:
            self.refusals.append(refusal)
            body = {"error": refusal[1], "status_code": refusal[0]}
            await ws.send_denial_response(JSONResponse(body, status_code=refusal[0]))
            return
        conn = Connection(list(ws.query_params.multi_items()), dict(ws.headers))
        self.connections.append(conn)
        await ws.accept()
        q = conn.query
        encoding, width = ENCODINGS[q["encoding"]]
        rate = int(q["sample_rate"])
        seg = Segmenter(rate, progress_ms=self.progress_ms, end_silence_ms=400)
        request_id = str(uuid.uuid4())
        state = {"text": "", "shown": 0}

        async def send(msg: dict[str, Any]) -> None:
            msg = {**msg, "request_id": request_id}
            conn.sent.append(msg)
            await ws.send_text(orjson.dumps(msg).decode())

        async def close(code: int, reason: str = "") -> None:
            conn.close_code = code
            with contextlib.suppress(RuntimeError):
                await ws.close(code, reason)

        async def transcript(ev: SegEvent, final: bool) -> None:
            words = state["text"].split() if isinstance(state["text"], str) else []
            if final:
                delta = words
            else:
                upto = min(len(words), 1 + (ev.t_ms - ev.start_ms) // self.progress_ms)
                delta = words[:upto]
            duration = (ev.t_ms - ev.start_ms) / 1000
            text = " ".join(delta)
            await send({"type": "transcript", "text": text, "is_final": final, "duration": duration,
                        "language": q["language"]})  # fmt: skip

        async def on_segment(ev: SegEvent) -> None:
            if ev.kind == "start":
                state["text"] = self.next_utterance()
            await transcript(ev, final=ev.kind == "end")

        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                conn.close_code = message.get("code")
                return
            data: bytes | None = message.get("bytes")
            if data is not None:
                conn.audio += data
                for ev in seg.feed(decode(encoding, data)):
                    await on_segment(ev)
                seconds = len(conn.audio) / (width * rate)
                if self.drop_after_seconds is not None and seconds >= self.drop_after_seconds:
                    await close(1011, "internal error")
                    return
                if self.error_after_seconds is not None and seconds >= self.error_after_seconds:
                    await send({"type": "error", "message": "Injected failure.", "status_code": 500,
                                "title": "Internal Server Error", "error_code": "internal"})  # fmt: skip
                    await close(1011, "internal error")
                    return
                continue
            command = message.get("text") or ""
            conn.commands.append(command)
            if command not in ("finalize", "close", "done"):
                await close(1003, "unsupported command")
                return
            forced = seg.force_end()
            if forced is not None:
                await on_segment(forced)
            if command == "finalize":
                await send({"type": "flush_done"})
                continue
            await send({"type": "done"})
            await close(1000)
            return
