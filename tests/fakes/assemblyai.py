"""A strict fake of AssemblyAI Universal Streaming v3 (``/v3/ws``; shared/protocols/stt.md section 2).

Checks what the real API checks: ``Authorization: <raw key>`` (no scheme word), a ``sample_rate``, a known
``encoding`` and a ``speech_model`` (required by current docs), lowercase booleans, JSON-encoded
``keyterms_prompt``; audio frames must each hold 50..1000 ms (else ``Error`` 3007 and close). Audio is
decoded with stdlib ``audioop`` and cut by the shared energy segmenter on audio time; each voiced segment
becomes the next scripted utterance, sent as growing ``Turn``s, then an ``end_of_turn`` Turn (raw text),
then, with ``format_turns=true``, the formatted copy. ``ForceEndpoint`` ends the open turn; ``Terminate``
yields ``Termination`` and a 1000 close.

Fault knobs: ``reject_status`` (HTTP refusal of the upgrade, ``retry_after`` header), ``auth_failure``
(``"http"``: 401 on the upgrade; ``"close"``: accept, then close 1008 as a session error),
``drop_after_seconds`` (close 1011 without a word), ``error_after_seconds`` (``Error`` 3008 then close).
"""

from __future__ import annotations

import contextlib
import re
import time
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

MODELS = {"universal-streaming-english", "universal-streaming-multilingual", "u3-rt-pro", "universal-3-5-pro"}
KNOWN = {
    "sample_rate", "encoding", "speech_model", "format_turns", "end_of_turn_confidence_threshold",
    "min_end_of_turn_silence_when_confident", "min_turn_silence", "max_turn_silence", "keyterms_prompt",
    "language_detection", "vad_threshold", "speaker_labels", "inactivity_timeout", "prompt", "token",
}  # fmt: skip
ENCODINGS = {"pcm_s16le": ("pcm16", 2), "pcm_mulaw": ("mulaw", 1)}


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Connection:
    query_items: list[tuple[str, str]]
    headers: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    frame_ms: list[float] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    @property
    def query(self) -> dict[str, str]:
        return dict(self.query_items)

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == kind]


class FakeAssemblyAI(ScriptedSTTFake[Connection]):
    """``FakeAssemblyAI(api_key, utterances)``; serve ``.app`` with ``tests.fakes.server.running``."""

    def __init__(
        self,
        api_key: str = "aai-test",
        utterances: Iterable[str] = (),
        *,
        retry_after: float | None = None,
        auth_failure: str = "http",
        **faults: Unpack[STTFaults],
    ) -> None:
        super().__init__(api_key, utterances, **faults)
        self.retry_after = retry_after
        self.auth_failure = auth_failure
        self.app = Starlette(routes=[WebSocketRoute("/v3/ws", self._session)])

    def _check(self, ws: WebSocket) -> dict[str, Any]:
        if self.reject_status is not None:
            raise _Refusal(self.reject_status, "injected refusal")
        items = ws.query_params.multi_items()
        names = [k for k, _ in items]
        for name in names:
            if name not in KNOWN or names.count(name) > 1:
                raise _Refusal(400, f"Invalid or repeated query parameter {name!r}.")
        q = dict(items)
        if not q.get("sample_rate", "").isdigit():
            raise _Refusal(400, "sample_rate is required.")
        encoding = q.get("encoding", "pcm_s16le")
        if encoding not in ENCODINGS:
            raise _Refusal(400, f"Invalid encoding {encoding!r}.")
        if q.get("speech_model") not in MODELS:
            raise _Refusal(400, "speech_model is required and must be a known model.")
        for name in ("format_turns", "language_detection", "speaker_labels"):
            if name in q and q[name] not in ("true", "false"):
                raise _Refusal(400, f"{name} must be true or false.")
        if "end_of_turn_confidence_threshold" in q:
            value = float(q["end_of_turn_confidence_threshold"])
            if not 0 <= value <= 1:
                raise _Refusal(400, "end_of_turn_confidence_threshold must be within 0..1.")
        for name in ("min_end_of_turn_silence_when_confident", "min_turn_silence", "max_turn_silence"):
            if name in q and not q[name].isdigit():
                raise _Refusal(400, f"{name} must be an integer (ms).")
        if "keyterms_prompt" in q:
            terms = orjson.loads(q["keyterms_prompt"])
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise _Refusal(400, "keyterms_prompt must be a JSON list of strings.")
        silence = q.get("min_end_of_turn_silence_when_confident") or q.get("min_turn_silence") or "400"
        return {
            "encoding": encoding,
            "rate": int(q["sample_rate"]),
            "format_turns": q.get("format_turns") == "true",
            "end_silence_ms": int(silence),
            "speech_started": q["speech_model"] in ("u3-rt-pro", "universal-3-5-pro"),
        }

    async def _session(self, ws: WebSocket) -> None:
        try:
            cfg = self._check(ws)
            authorised = ws.headers.get("authorization") == self.api_key
            if not authorised and self.auth_failure == "http":
                raise _Refusal(401, "Invalid API key")
        except _Refusal as refusal:
            self.refusals.append((refusal.status, refusal.message))
            extra = {"retry-after": f"{self.retry_after:g}"} if self.retry_after is not None else {}
            await ws.send_denial_response(
                JSONResponse({"error": refusal.message}, status_code=refusal.status, headers=extra)
            )
            return
        conn = Connection(list(ws.query_params.multi_items()), dict(ws.headers))
        self.connections.append(conn)
        await ws.accept()
        session = _Session(self, conn, ws, cfg)
        if not authorised:
            await session.close(1008, "Unauthorized connection: Invalid API key")
            return
        await session.run()


class _Session:
    def __init__(self, fake: FakeAssemblyAI, conn: Connection, ws: WebSocket, cfg: dict[str, Any]) -> None:
        self.fake, self.conn, self.ws, self.cfg = fake, conn, ws, cfg
        self.encoding, self.width = ENCODINGS[cfg["encoding"]]
        self.rate: int = cfg["rate"]
        self.seg = Segmenter(self.rate, end_silence_ms=cfg["end_silence_ms"], progress_ms=fake.progress_ms)
        self.turn_order = 0
        self.text = ""
        self.started = time.monotonic()

    @property
    def audio_seconds(self) -> float:
        return len(self.conn.audio) / (self.width * self.rate)

    async def send(self, msg: dict[str, Any]) -> None:
        self.conn.sent.append(msg)
        await self.ws.send_text(orjson.dumps(msg).decode())

    async def close(self, code: int, reason: str = "") -> None:
        self.conn.close_code = code
        with contextlib.suppress(RuntimeError):
            await self.ws.close(code, reason)

    async def run(self) -> None:
        await self.send({"type": "Begin", "id": str(uuid.uuid4()), "expires_at": int(time.time()) + 3600})
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.conn.close_code = message.get("code")
                return
            data: bytes | None = message.get("bytes")
            if data is not None:
                ms = len(data) / (self.width * self.rate) * 1000
                self.conn.frame_ms.append(ms)
                if not 50 <= ms <= 1000:
                    await self.send(
                        {
                            "type": "Error",
                            "error_code": 3007,
                            "error": f"Input Duration Violation: {ms:.0f} ms",
                        }
                    )
                    await self.close(3007, "Input duration violation")
                    return
                self.conn.audio += data
                for ev in self.seg.feed(decode(self.encoding, data)):
                    await self._on_segment(ev)
                if (
                    self.fake.drop_after_seconds is not None
                    and self.audio_seconds >= self.fake.drop_after_seconds
                ):
                    await self.close(1011, "Internal error")
                    return
                if (
                    self.fake.error_after_seconds is not None
                    and self.audio_seconds >= self.fake.error_after_seconds
                ):
                    await self.send(
                        {"type": "Error", "error_code": 3008, "error": "Session Expired: injected"}
                    )
                    await self.close(3008, "Session Expired")
                    return
                continue
            control = orjson.loads(message.get("text") or "null")
            if not isinstance(control, dict):
                await self.close(1003, "Invalid message")
                return
            self.conn.controls.append(control)
            kind = control.get("type")
            if kind == "ForceEndpoint":
                if self.seg.force_end() is not None:
                    await self._end_turn()
            elif kind == "KeepAlive":
                continue
            elif kind == "Terminate":
                if self.seg.force_end() is not None:
                    await self._end_turn()
                await self.send(
                    {
                        "type": "Termination",
                        "audio_duration_seconds": round(self.audio_seconds, 3),
                        "session_duration_seconds": round(time.monotonic() - self.started, 3),
                    }
                )
                await self.close(1000)
                return
            else:
                await self.close(1003, f"Unknown message type {kind!r}")
                return

    async def _on_segment(self, ev: SegEvent) -> None:
        if ev.kind == "start":
            self.text = self.fake.next_utterance()
            if self.cfg["speech_started"]:
                await self.send({"type": "SpeechStarted", "timestamp": ev.start_ms})
            await self._turn(ev, final=False)
        elif ev.kind == "progress":
            await self._turn(ev, final=False)
        else:
            await self._end_turn()

    async def _turn(self, ev: SegEvent, *, final: bool) -> None:
        words = _raw(self.text).split()
        shown = len(words) if final else min(len(words), 1 + (ev.t_ms - ev.start_ms) // self.fake.progress_ms)
        listed = [
            {
                "start": ev.start_ms + 100 * i,
                "end": ev.start_ms + 100 * (i + 1),
                "text": w,
                "confidence": 0.9,
                "word_is_final": final or i < shown - 1,
            }
            for i, w in enumerate(words[:shown])
        ]
        finished = [str(w["text"]) for w in listed if w["word_is_final"]]
        await self.send(
            {
                "type": "Turn",
                "turn_order": self.turn_order,
                "turn_is_formatted": False,
                "end_of_turn": final,
                "transcript": " ".join(finished),
                "end_of_turn_confidence": 0.9 if final else 0.1,
                "words": listed,
                "utterance": "",
            }
        )

    async def _end_turn(self) -> None:
        ev = SegEvent("end", self.seg.t_ms, self.seg.start_ms)
        await self._turn(ev, final=True)
        if self.cfg["format_turns"]:
            last = dict(self.conn.sent[-1])
            await self.send({**last, "turn_is_formatted": True, "transcript": self.text})
        self.turn_order += 1
        self.text = ""


def _raw(text: str) -> str:
    """What an unformatted turn looks like: lowercase, no punctuation."""
    return re.sub(r"[^\w\s']", "", text.lower())
