"""A strict fake of Deepgram's live ``/v1/listen`` WebSocket (shared/protocols/stt.md, section 1).

It checks what the real API checks (``Authorization: Token``, raw ``encoding``/``sample_rate``, lowercase
booleans) and answers refusals with an HTTP status on the upgrade, as Deepgram does. Audio is decoded
(linear16 / mulaw / alaw, own G.711 tables) and cut by an energy segmenter that runs on *audio* time, so
tests may stream faster than real time. Each voiced segment becomes the next scripted utterance.

Deliberately stricter than Deepgram: unknown query parameters are refused (catches client typos).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

_KNOWN = {
    "model", "language", "encoding", "sample_rate", "channels", "multichannel", "interim_results",
    "endpointing", "utterance_end_ms", "vad_events", "smart_format", "punctuate", "numerals",
    "profanity_filter", "filler_words", "dictation", "diarize", "no_delay", "keyterm", "keywords",
    "redact", "replace", "search", "tag", "extra", "mip_opt_out", "version", "callback",
}  # fmt: skip
_BOOLS = {
    "multichannel", "interim_results", "vad_events", "smart_format", "punctuate", "numerals",
    "profanity_filter", "filler_words", "dictation", "diarize", "no_delay", "mip_opt_out",
}  # fmt: skip
_REPEATABLE = {"keyterm", "keywords", "redact", "replace", "search", "tag", "extra"}
_RATES = {
    "linear16": {8000, 16000, 22050, 24000, 32000, 44100, 48000},
    "mulaw": {8000, 16000},
    "alaw": {8000, 16000},
}
_NO_ENDPOINT_FINAL_MS = 500  # with endpointing=false, segments still become is_final after this silence
_WINDOW_MS = 10


# -- G.711 (own tables; independent of getpatter's codecs) -----------------------------------------------


def ulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, dtype=np.uint8)
    exponent = ((u >> 4) & 0x07).astype(np.int32)
    magnitude = ((((u & 0x0F).astype(np.int32) << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def alaw_decode(data: bytes) -> np.ndarray:
    a = np.frombuffer(data, dtype=np.uint8) ^ 0x55
    exponent = ((a >> 4) & 0x07).astype(np.int32)
    mantissa = (a & 0x0F).astype(np.int32)
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


def ulaw_encode(samples: np.ndarray) -> bytes:
    """Test helper: PCM16 samples -> G.711 mu-law bytes."""
    x = samples.astype(np.int32)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    byte = ((x < 0).astype(np.int32) << 7) | (exponent << 4) | mantissa
    return bytes((~byte & 0xFF).astype(np.uint8).tobytes())


# -- recorded state --------------------------------------------------------------------------------------


@dataclass
class Connection:
    """What one client connection sent and received; tests assert on it."""

    query_items: list[tuple[str, str]]
    headers: dict[str, str]
    request_id: str
    audio: bytearray = field(default_factory=bytearray)
    frame_sizes: list[int] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    @property
    def query(self) -> dict[str, str]:
        return dict(self.query_items)

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("type") == kind]


class _Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


# -- segmenter -------------------------------------------------------------------------------------------


class _Segmenter:
    """Energy segmentation on audio time; returns the Deepgram messages each chunk of audio triggers."""

    def __init__(self, fake: FakeDeepgram, conn: Connection, cfg: dict[str, Any]) -> None:
        self.fake, self.conn = fake, conn
        self.encoding: str = cfg["encoding"]
        self.rate: int = cfg["sample_rate"]
        self.interim: bool = cfg["interim_results"]
        self.vad: bool = cfg["vad_events"]
        self.endpointing: int | None = cfg["endpointing"]
        self.utterance_end: int | None = cfg["utterance_end_ms"]
        self.window = self.rate * _WINDOW_MS // 1000
        self.pending_bytes = b""
        self.pending_samples = np.zeros(0, dtype=np.int16)
        self.t_ms = 0  # audio time analysed so far
        self.cursor_ms = 0  # start of the next Results window
        self.voiced_run = self.silence = 0
        self.in_segment = False
        self.seg_start = self.seg_end = self.last_interim = 0
        self.text = ""
        self.await_utterance_end = False
        self.last_word_end = 0

    @property
    def audio_seconds(self) -> float:
        width = 2 if self.encoding == "linear16" else 1
        return len(self.conn.audio) / (width * self.rate)

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        raw = self.pending_bytes + data
        if self.encoding == "linear16":
            usable = len(raw) - len(raw) % 2
            self.pending_bytes = raw[usable:]
            pcm = np.frombuffer(raw[:usable], dtype="<i2")
        else:
            pcm = ulaw_decode(raw) if self.encoding == "mulaw" else alaw_decode(raw)
        samples = np.concatenate([self.pending_samples, pcm])
        out: list[dict[str, Any]] = []
        n = len(samples) // self.window
        for i in range(n):
            chunk = samples[i * self.window : (i + 1) * self.window].astype(np.float64)
            out += self._window(float(np.sqrt(np.mean(chunk * chunk))))
        self.pending_samples = samples[n * self.window :]
        return out

    def _window(self, rms: float) -> list[dict[str, Any]]:
        end = self.t_ms + _WINDOW_MS
        self.t_ms = end
        out: list[dict[str, Any]] = []
        if rms >= self.fake.rms_threshold:
            self.silence = 0
            if self.in_segment:
                self.seg_end = end
                if self.interim and end - self.last_interim >= self.fake.interim_every_ms:
                    out.append(self._interim(end))
                return out
            self.voiced_run += _WINDOW_MS
            if self.voiced_run >= self.fake.min_voiced_ms:
                self.in_segment, self.await_utterance_end = True, False
                self.seg_start, self.seg_end = end - self.voiced_run, end
                self.text = self.fake.next_utterance()
                if self.vad:
                    out.append(
                        {"type": "SpeechStarted", "channel": [0, 1], "timestamp": self.seg_start / 1000}
                    )
                if self.interim:
                    out.append(self._interim(end))
            return out
        self.voiced_run = 0
        self.silence += _WINDOW_MS
        if self.in_segment:
            limit = self.endpointing if self.endpointing is not None else _NO_ENDPOINT_FINAL_MS
            limit = max(limit, self.fake.endpoint_floor_ms)
            if self.silence >= limit:
                out.append(self.final(speech_final=self.endpointing is not None))
        elif (
            self.await_utterance_end
            and self.utterance_end is not None
            and end - self.last_word_end >= self.utterance_end
        ):
            self.await_utterance_end = False
            out.append(
                {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self.last_word_end / 1000}
            )
        return out

    def _interim(self, now: int) -> dict[str, Any]:
        self.last_interim = now
        words = self.text.split()
        shown = min(len(words), 1 + (now - self.seg_start) // self.fake.interim_every_ms)
        return self._results(" ".join(words[:shown]), now, is_final=False)

    def final(self, *, speech_final: bool = False) -> dict[str, Any]:
        """End the current segment: ``is_final`` Results with whatever text was not flushed yet."""
        msg = self._results(self.text, self.t_ms, is_final=True, speech_final=speech_final)
        self.cursor_ms = self.t_ms
        self.in_segment, self.await_utterance_end = False, True
        self.last_word_end = self.seg_end
        self.text = ""
        return msg

    def flush(self) -> dict[str, Any]:
        """``Finalize``: fix the words heard so far; the segment itself lives on until the endpoint, which
        then arrives as an empty ``speech_final`` Results (as Deepgram does)."""
        text = self.text if self.in_segment else ""
        msg = self._results(text, self.t_ms, is_final=True, from_finalize=True)
        self.cursor_ms = self.t_ms
        self.text = ""
        return msg

    def _results(
        self, text: str, now: int, *, is_final: bool, speech_final: bool = False, from_finalize: bool = False
    ) -> dict[str, Any]:
        words = text.split()
        span = max(self.seg_end - self.seg_start, 1) / max(len(words), 1)
        word_list = [
            {
                "word": w.lower().strip(".,?!"),
                "start": (self.seg_start + i * span) / 1000,
                "end": (self.seg_start + (i + 1) * span) / 1000,
                "confidence": self.fake.confidence,
            }
            for i, w in enumerate(words)
        ]
        alt = {"transcript": text, "confidence": self.fake.confidence if text else 0.0, "words": word_list}
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": (now - self.cursor_ms) / 1000,
            "start": self.cursor_ms / 1000,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [alt]},
            "metadata": {
                "request_id": self.conn.request_id,
                "model_info": {
                    "name": self.conn.query.get("model", "nova-3"),
                    "version": "fake",
                    "arch": "fake",
                },
                "model_uuid": "00000000-0000-0000-0000-000000000000",
            },
        }


# -- the server ------------------------------------------------------------------------------------------


class FakeDeepgram:
    """``FakeDeepgram(api_key, utterances)``; serve ``.app`` with ``tests.fakes.server.running``.

    Fault knobs: ``reject_status`` (answer every upgrade with that HTTP status; ``retry_after`` adds the
    header), ``drop_after_seconds`` (after that much audio, close with 1011 ``NET-0000`` -- no final, no
    Metadata), ``error_after_seconds`` (an ``Error`` message, then close 1011), ``idle_timeout_s`` (wall
    time without any frame before the NET-0001 close, 10 s like Deepgram).

    Pacing knobs (the benchmark's realistic vendor): ``endpoint_floor_ms`` (the endpointer never ends a
    turn on less silence than this, whatever ``endpointing`` asks) and ``final_delay_s`` (wall time between
    the endpoint and its ``speech_final`` Results, the vendor's own processing; later messages wait).
    """

    def __init__(
        self,
        api_key: str = "dg-test",
        utterances: Iterable[str] = (),
        *,
        reject_status: int | None = None,
        retry_after: float | None = None,
        drop_after_seconds: float | None = None,
        error_after_seconds: float | None = None,
        idle_timeout_s: float = 10.0,
        rms_threshold: float = 500.0,
        min_voiced_ms: int = 60,
        interim_every_ms: int = 100,
        confidence: float = 0.98,
        endpoint_floor_ms: int = 0,
        final_delay_s: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.utterances = list(utterances)
        self.reject_status = reject_status
        self.retry_after = retry_after
        self.drop_after_seconds = drop_after_seconds
        self.error_after_seconds = error_after_seconds
        self.idle_timeout_s = idle_timeout_s
        self.rms_threshold = rms_threshold
        self.min_voiced_ms = min_voiced_ms
        self.interim_every_ms = interim_every_ms
        self.confidence = confidence
        self.endpoint_floor_ms = endpoint_floor_ms
        self.final_delay_s = final_delay_s
        self.connections: list[Connection] = []
        self.refusals: list[tuple[int, str]] = []
        self._script = itertools.count()
        self.app = Starlette(routes=[WebSocketRoute("/v1/listen", self._listen)])

    def next_utterance(self) -> str:
        """The next scripted text, shared across connections (a reconnect continues the script)."""
        i = next(self._script)
        return self.utterances[i] if i < len(self.utterances) else ""

    @property
    def bytes_received(self) -> int:
        return sum(len(c.audio) for c in self.connections)

    @property
    def control_messages(self) -> list[dict[str, Any]]:
        return [m for c in self.connections for m in c.controls]

    def _check(self, ws: WebSocket) -> dict[str, Any]:
        if self.reject_status is not None:
            extra = {"retry-after": f"{self.retry_after:g}"} if self.retry_after is not None else {}
            raise _Refusal(self.reject_status, "injected refusal", extra)
        if ws.headers.get("authorization") != f"Token {self.api_key}":
            raise _Refusal(401, "Invalid credentials.")
        items = ws.query_params.multi_items()
        names = [k for k, _ in items]
        for name in names:
            if name not in _KNOWN:
                raise _Refusal(400, f"Unknown query parameter {name!r}.")
            if name not in _REPEATABLE and names.count(name) > 1:
                raise _Refusal(400, f"Query parameter {name!r} given more than once.")
        q = dict(items)
        for name in _BOOLS & q.keys():
            if q[name] not in ("true", "false"):
                raise _Refusal(400, f"{name} must be true or false, got {q[name]!r}.")
        encoding = q.get("encoding")
        if encoding is None:
            raise _Refusal(400, "This fake only takes raw audio: encoding is required.")
        if encoding not in _RATES:
            raise _Refusal(400, f"Unsupported encoding {encoding!r}.")
        rate_text = q.get("sample_rate")
        if rate_text is None or not rate_text.isdigit():
            raise _Refusal(400, "sample_rate is required (an integer) for raw encodings.")
        if int(rate_text) not in _RATES[encoding]:
            raise _Refusal(400, f"sample_rate {rate_text} is not valid for encoding {encoding}.")
        if q.get("channels", "1") != "1" or q.get("multichannel") == "true":
            raise _Refusal(400, "This fake handles mono audio only.")
        endpointing_text = q.get("endpointing", "10")
        if endpointing_text != "false" and not endpointing_text.isdigit():
            raise _Refusal(400, f"endpointing must be an integer (ms) or false, got {endpointing_text!r}.")
        ue_text = q.get("utterance_end_ms")
        if ue_text is not None and not ue_text.isdigit():
            raise _Refusal(400, f"utterance_end_ms must be an integer, got {ue_text!r}.")
        interim = q.get("interim_results") == "true"
        if ue_text is not None and not interim:
            raise _Refusal(400, "utterance_end_ms requires interim_results=true.")
        return {
            "encoding": encoding,
            "sample_rate": int(rate_text),
            "interim_results": interim,
            "vad_events": q.get("vad_events") == "true",
            "endpointing": None if endpointing_text == "false" else int(endpointing_text),
            "utterance_end_ms": int(ue_text) if ue_text is not None else None,
        }

    async def _listen(self, ws: WebSocket) -> None:
        request_id = str(uuid.uuid4())
        try:
            cfg = self._check(ws)
        except _Refusal as refusal:
            self.refusals.append((refusal.status, refusal.message))
            headers = {"dg-error": refusal.message, "dg-request-id": request_id, **refusal.headers}
            body = {"err_code": str(refusal.status), "err_msg": refusal.message, "request_id": request_id}
            await ws.send_denial_response(JSONResponse(body, status_code=refusal.status, headers=headers))
            return
        conn = Connection(list(ws.query_params.multi_items()), dict(ws.headers), request_id)
        self.connections.append(conn)
        await ws.accept()
        seg = _Segmenter(self, conn, cfg)
        held: list[asyncio.Task[None]] = []  # endpoint finals waiting out final_delay_s, in order

        async def send_now(msg: dict[str, Any]) -> None:
            conn.sent.append(msg)
            await ws.send_text(orjson.dumps(msg).decode())

        async def send_later(msg: dict[str, Any], after: asyncio.Task[None] | None) -> None:
            await asyncio.sleep(self.final_delay_s)
            if after is not None:
                await after
            with contextlib.suppress(Exception):  # the client may have gone meanwhile
                await send_now(msg)

        async def send(msg: dict[str, Any]) -> None:
            held[:] = [t for t in held if not t.done()]
            if self.final_delay_s and msg.get("speech_final"):
                held.append(asyncio.create_task(send_later(msg, held[-1] if held else None)))
            elif held:
                held.append(asyncio.create_task(send_later_now(msg, held[-1])))
            else:
                await send_now(msg)

        async def send_later_now(msg: dict[str, Any], after: asyncio.Task[None]) -> None:
            await after
            with contextlib.suppress(Exception):  # the client may have gone meanwhile
                await send_now(msg)

        async def close(code: int, reason: str = "") -> None:
            conn.close_code = code
            with contextlib.suppress(RuntimeError):
                await ws.close(code, reason)

        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), self.idle_timeout_s)
            except TimeoutError:
                await close(1011, "NET-0001")
                return
            if message["type"] == "websocket.disconnect":
                conn.close_code = message.get("code")
                return
            data: bytes | None = message.get("bytes")
            if data:
                conn.frame_sizes.append(len(data))
                conn.audio += data
                for msg in seg.feed(data):
                    await send(msg)
                if self.drop_after_seconds is not None and seg.audio_seconds >= self.drop_after_seconds:
                    await close(1011, "NET-0000")
                    return
                if self.error_after_seconds is not None and seg.audio_seconds >= self.error_after_seconds:
                    error = {"type": "Error", "variant": "DATA-0000", "description": "Injected failure."}
                    await send({**error, "message": "Injected failure."})
                    await close(1011, "DATA-0000")
                    return
                continue
            text = message.get("text")
            try:
                control = orjson.loads(text) if text is not None else {"type": "CloseStream"}
            except orjson.JSONDecodeError:
                control = None
            if not isinstance(control, dict):
                await close(1008, "DATA-0000")
                return
            conn.controls.append(control)
            kind = control.get("type")
            if kind == "KeepAlive":
                continue
            if kind == "Finalize":
                await send(seg.flush())
                continue
            if kind == "CloseStream":
                if seg.in_segment:
                    await send(seg.final())
                await send(
                    {
                        "type": "Metadata",
                        "transaction_key": "deprecated",
                        "request_id": request_id,
                        "sha256": "0" * 64,
                        "created": "2024-01-01T00:00:00.000Z",
                        "duration": seg.audio_seconds,
                        "channels": 1,
                    }
                )
                await close(1000)
                return
            await close(1008, "DATA-0000")
            return
