"""A strict fake of Soniox real-time STT (``/transcribe-websocket``; shared/protocols/stt.md section 4).

Checks: ``Authorization: Bearer <key>`` on the upgrade (401 otherwise); the first frame must be the JSON
config with a known ``model``, a raw ``audio_format`` plus ``sample_rate`` and ``num_channels: 1``, and only
known keys (a deprecated in-message ``api_key`` is refused too) -- violations answer
``{"error_code": 400, ...}`` and close. Audio is decoded with stdlib ``audioop`` and segmented on audio time;
each voiced segment becomes the next scripted utterance, streamed as sub-word tokens: non-final tokens
(re-sent, growing), then the final tokens once plus ``<end>`` when the segment ends (endpoint detection),
or ``<fin>`` after ``{"type": "finalize"}``. An empty frame ends the audio: remaining finals, then
``{"tokens": [], "finished": true}`` and a 1000 close. ``{"type": "keepalive"}`` is accepted silently.

Fault knobs: ``reject_status``, ``drop_after_seconds`` (close 1011), ``error_after_seconds`` (``503``
"Cannot continue request", then close).
"""

from __future__ import annotations

import contextlib
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

MODELS = {"stt-rt-v4", "stt-rt-v5", "stt-rt-v3", "stt-rt-preview"}
FORMATS = {"pcm_s16le": ("pcm16", 2), "mulaw": ("mulaw", 1), "alaw": ("alaw", 1)}
CONFIG_KEYS = {
    "model", "audio_format", "sample_rate", "num_channels", "language_hints", "language_hints_strict",
    "enable_endpoint_detection", "enable_speaker_diarization", "enable_language_identification", "context",
    "client_reference_id", "max_endpoint_delay_ms", "translation",
}  # fmt: skip


@dataclass
class Connection:
    headers: dict[str, str]
    config: dict[str, Any] | None = None
    audio: bytearray = field(default_factory=bytearray)
    controls: list[Any] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    @property
    def tokens(self) -> list[dict[str, Any]]:
        return [t for m in self.sent for t in m.get("tokens", [])]


def _pieces(text: str) -> list[str]:
    """Split into Soniox-like sub-word tokens: spaces stay inside token text."""
    out: list[str] = []
    for i, word in enumerate(text.split()):
        word = word if i == 0 else " " + word
        cut = max(1, len(word) // 2)
        out += [word[:cut], word[cut:]] if len(word) > 3 else [word]
    return out


class FakeSoniox(ScriptedSTTFake[Connection]):
    def __init__(
        self,
        api_key: str = "soniox-test",
        utterances: Iterable[str] = (),
        **faults: Unpack[STTFaults],
    ) -> None:
        super().__init__(api_key, utterances, **faults)
        self.app = Starlette(routes=[WebSocketRoute("/transcribe-websocket", self._session)])

    @staticmethod
    def check_config(config: Any) -> str | None:
        if not isinstance(config, dict):
            return "The first message must be a JSON config object."
        unknown = set(config) - CONFIG_KEYS
        if unknown:
            return f"Unknown config field(s): {sorted(unknown)}."
        if config.get("model") not in MODELS:
            return "Invalid model specified."
        fmt = config.get("audio_format")
        if fmt not in FORMATS:
            return f"Unsupported audio_format {fmt!r}."
        rate = config.get("sample_rate")
        if not isinstance(rate, int) or isinstance(rate, bool) or not 8000 <= rate <= 48000:
            return "sample_rate is required for raw audio formats."
        if config.get("num_channels") != 1:
            return "num_channels is required for raw audio formats (this fake: 1)."
        delay = config.get("max_endpoint_delay_ms", 2000)
        if not isinstance(delay, int) or not 500 <= delay <= 3000:
            return "max_endpoint_delay_ms must be within 500..3000."
        for name in (
            "enable_endpoint_detection",
            "enable_speaker_diarization",
            "enable_language_identification",
        ):
            if name in config and not isinstance(config[name], bool):
                return f"{name} must be a boolean."
        return None

    async def _session(self, ws: WebSocket) -> None:
        status = self.reject_status
        if status is None and ws.headers.get("authorization") != f"Bearer {self.api_key}":
            status = 401
        if status is not None:
            message = "injected refusal" if self.reject_status else "Invalid API key."
            self.refusals.append((status, message))
            body = {"error_code": status, "error_message": message}
            await ws.send_denial_response(JSONResponse(body, status_code=status))
            return
        conn = Connection(dict(ws.headers))
        self.connections.append(conn)
        await ws.accept()
        await _Session(self, conn, ws).run()


class _Session:
    def __init__(self, fake: FakeSoniox, conn: Connection, ws: WebSocket) -> None:
        self.fake, self.conn, self.ws = fake, conn, ws
        self.seg: Segmenter | None = None
        self.text = ""
        self.final_upto = 0  # tokens of the current utterance already sent as final

    async def send(self, msg: dict[str, Any]) -> None:
        self.conn.sent.append(msg)
        await self.ws.send_text(orjson.dumps(msg).decode())

    async def close(self, code: int, reason: str = "") -> None:
        self.conn.close_code = code
        with contextlib.suppress(RuntimeError):
            await self.ws.close(code, reason)

    async def fail(self, code: int, message: str) -> None:
        await self.send({"error_code": code, "error_message": message})
        await self.close(1000 if code < 500 else 1011, message[:100])

    async def run(self) -> None:
        width = 2
        encoding = "pcm16"
        rate = 16000
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                self.conn.close_code = message.get("code")
                return
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            if self.conn.config is None:
                try:
                    config = orjson.loads(text) if text else None
                except orjson.JSONDecodeError:
                    config = None
                problem = FakeSoniox.check_config(config)
                if problem is not None:
                    await self.fail(400, problem)
                    return
                assert isinstance(config, dict)
                self.conn.config = config
                encoding, width = FORMATS[config["audio_format"]]
                rate = config["sample_rate"]
                end_ms = (
                    config.get("max_endpoint_delay_ms", 2000)
                    if config.get("enable_endpoint_detection")
                    else 10**9
                )
                self.seg = Segmenter(rate, end_silence_ms=end_ms, progress_ms=self.fake.progress_ms)
                continue
            assert self.seg is not None
            if data or text == "" or data == b"":
                if not data:  # end of audio
                    if self.seg.force_end() is not None:
                        await self._final(None)
                    await self.send({"tokens": [], "final_audio_proc_ms": self.seg.t_ms,
                                     "total_audio_proc_ms": self.seg.t_ms, "finished": True})  # fmt: skip
                    await self.close(1000)
                    return
                self.conn.audio += data
                for ev in self.seg.feed(decode(encoding, data)):
                    await self._on_segment(ev)
                seconds = len(self.conn.audio) / (width * rate)
                if self.fake.drop_after_seconds is not None and seconds >= self.fake.drop_after_seconds:
                    await self.close(1011, "internal error")
                    return
                if self.fake.error_after_seconds is not None and seconds >= self.fake.error_after_seconds:
                    await self.fail(503, "Cannot continue request (code N/A). Please restart the request.")
                    return
                continue
            control = orjson.loads(text or "null")
            self.conn.controls.append(control)
            kind = control.get("type") if isinstance(control, dict) else None
            if kind == "keepalive":
                continue
            if kind == "finalize":
                self.seg.force_end()
                await self._final("<fin>")
                continue
            await self.fail(400, f"Unknown control message {kind!r}.")
            return

    async def _on_segment(self, ev: SegEvent) -> None:
        if ev.kind == "start":
            self.text, self.final_upto = self.fake.next_utterance(), 0
        if ev.kind == "end":
            await self._final("<end>")
            return
        pieces = _pieces(self.text)
        shown = min(len(pieces), 1 + (ev.t_ms - ev.start_ms) // self.fake.progress_ms)
        tokens = [self._token(p, ev.start_ms + 60 * i, False) for i, p in enumerate(pieces[:shown])]
        await self.send(
            {"tokens": tokens, "final_audio_proc_ms": ev.start_ms, "total_audio_proc_ms": ev.t_ms}
        )

    async def _final(self, marker: str | None) -> None:
        assert self.seg is not None
        pieces = _pieces(self.text)[self.final_upto :]
        tokens = [self._token(p, self.seg.start_ms + 60 * i, True) for i, p in enumerate(pieces)]
        if marker is not None:
            tokens.append({"text": marker, "is_final": True})
        self.final_upto += len(pieces)
        self.text = self.text if marker is None else ""
        self.final_upto = self.final_upto if marker is None else 0
        t = self.seg.t_ms
        await self.send({"tokens": tokens, "final_audio_proc_ms": t, "total_audio_proc_ms": t})

    @staticmethod
    def _token(text: str, start: int, final: bool) -> dict[str, Any]:
        return {"text": text, "start_ms": start, "end_ms": start + 60, "confidence": 0.75, "is_final": final}
