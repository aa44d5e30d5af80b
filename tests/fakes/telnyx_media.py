"""The carrier side of one Telnyx media stream: ``FakeTelnyxCall`` (telnyx.md §5, audio.md §1-§2).

Telnyx is the WebSocket *client*. The fake sends ``connected``, then ``start`` (top-level ``stream_id``,
``media_format``, ``client_state``), then one ``media`` frame every 20 ms of wall time on an
absolute-deadline clock, in the negotiated codec:

* ``L16``: 640 bytes of 16 kHz PCM16 per frame in **network byte order** (big-endian, RFC 3551). Tests
  script and observe little-endian PCM16; the swap happens only on the wire (stdlib ``audioop.byteswap``).
* ``PCMU``: 160 bytes of mu-law 8 kHz per frame (stdlib ``audioop``; never getpatter's codecs).

``sequence_number`` counts every frame after ``connected`` (``start`` is ``"1"``), ``chunk`` counts media
frames from ``"1"``, ``timestamp`` is the frame's audio time in ms. All numbers are strings, as at Telnyx.

What the server sends back goes through a model of the playback buffer: ``media`` (RTP mode: raw frames)
plays at the codec's byte rate after whatever is queued; a ``mark`` is echoed when playback reaches it (at
once if nothing is queued); ``clear`` drops what has not played and echoes every pending mark. Messages
that break the protocol land in ``protocol_errors`` (and Telnyx's ``error`` frame goes back).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.fakes._media_stream import FRAME_SECONDS, MediaStreamSide
from tests.fakes.twilio_media import EchoedMark, Received, pcm16_16k_to_mulaw_8k, tone_pcm16_16k

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["CODECS", "EchoedMark", "FakeTelnyxCall", "Received", "SentFrame", "tone_pcm16_16k"]


@dataclass(frozen=True)
class _Codec:
    name: str
    sample_rate: int
    frame_bytes: int
    silence: bytes

    @property
    def bytes_per_second(self) -> int:
        return int(self.frame_bytes / FRAME_SECONDS)


CODECS: dict[str, _Codec] = {
    "L16": _Codec("L16", 16000, 640, b"\x00\x00" * 320),
    "PCMU": _Codec("PCMU", 8000, 160, b"\xff" * 160),
}


@dataclass(frozen=True)
class SentFrame:
    """One media frame the fake sent: ``audio`` is little-endian PCM16 (L16) or mu-law (PCMU), i.e.
    before the big-endian swap; ``wire`` is exactly what went in the payload."""

    time: float
    chunk: int
    audio: bytes
    wire: bytes
    is_speech: bool


@dataclass(eq=False)
class FakeTelnyxCall(MediaStreamSide):
    """One call as Telnyx sees it: Call Control state plus, once answered, its media stream."""

    call_control_id: str
    call_leg_id: str
    call_session_id: str
    from_: str
    to: str
    direction: str
    state: str = "parked"
    codec: str = "L16"
    stream_id: str | None = None
    stream_url: str | None = None
    client_state: str | None = None
    #: JSON bodies of every Call Control command on this call, in order: ``(action, body)``.
    commands: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Who ended the stream: caller-hangup, caller-drop, server-closed, rest-hangup, rest-transfer.
    ended_by: str | None = None
    close_code: int | None = None
    received: list[Received] = field(default_factory=list)
    sent_frames: list[SentFrame] = field(default_factory=list)
    clear_times: list[float] = field(default_factory=list)
    marks_echoed: list[EchoedMark] = field(default_factory=list)
    speech_onsets: list[float] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)

    SEQ_KEY = "sequence_number"

    def __post_init__(self) -> None:
        self.answered = asyncio.Event()
        self._spec = CODECS[self.codec]
        self._init_stream(self._echo_mark)

    # ---- lifecycle (driven by FakeTelnyx) -------------------------------------------------------------

    async def _attach(self, ws: ClientConnection, stream_id: str, codec: str) -> None:
        self._ws = ws
        self.stream_id = stream_id
        self.codec = codec
        self._spec = CODECS[codec]
        await ws.send(json.dumps({"event": "connected", "version": "1.0.0"}))
        start = {
            "event": "start",
            "start": {
                "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
                "call_control_id": self.call_control_id,
                "call_session_id": self.call_session_id,
                "from": self.from_,
                "to": self.to,
                "tags": [],
                "client_state": self.client_state,
                "media_format": {"encoding": codec, "sample_rate": self._spec.sample_rate, "channels": 1},
            },
            "stream_id": stream_id,
        }
        await self._send(start)
        self._start_stream_tasks("telnyx")

    @property
    def call_label(self) -> str:
        return self.call_control_id

    def _stop_message(self) -> dict[str, Any]:
        stop = {"user_id": "3E6F995F-85F7-4705-9741-53B116D28237", "call_control_id": self.call_control_id}
        return {"event": "stop", "stop": stop, "stream_id": self.stream_id}

    def _on_finish(self) -> None:
        self.state = "hangup"

    # ---- caller actions -------------------------------------------------------------------------------

    async def say(self, pcm16_16k: bytes) -> None:
        """Queue caller speech (PCM16 LE mono 16 kHz); returns once its last byte has been sent."""
        audio = pcm16_16k if self.codec == "L16" else pcm16_16k_to_mulaw_8k(pcm16_16k)
        await self._queue(audio, is_speech=True)

    async def say_tone(self, ms: float, freq: float = 300.0, dbfs: float = -12.0) -> None:
        await self.say(tone_pcm16_16k(ms, freq, dbfs))

    async def silence(self, ms: float) -> None:
        n = int(self._spec.bytes_per_second * ms / 1000)
        await self._queue((self._spec.silence * (n // len(self._spec.silence) + 1))[:n], is_speech=False)

    async def dtmf(self, digit: str) -> None:
        await self._send(
            {
                "event": "dtmf",
                "stream_id": self.stream_id,
                "occurred_at": "2026-01-01T12:00:00.000000Z",
                "dtmf": {"digit": digit},
            }
        )

    # ---- pacer ----------------------------------------------------------------------------------------

    async def _pace(self) -> None:
        await self._pace_frames(self._send_frame)

    async def _send_frame(self, n: int, now: float) -> bool:
        audio, speech, finished = self._take_frame(self._spec.frame_bytes, self._spec.silence, now)
        wire = audioop.byteswap(audio, 2) if self.codec == "L16" else audio
        media = {
            "track": "inbound",
            "chunk": str(n),
            "timestamp": str((n - 1) * 20),
            "payload": base64.b64encode(wire).decode("ascii"),
        }
        ok = await self._send({"event": "media", "media": media, "stream_id": self.stream_id})
        if ok:
            self.sent_frames.append(SentFrame(now, n, audio, wire, speech))
        self._release(finished)
        return ok

    # ---- what the server sends ------------------------------------------------------------------------

    async def _error(self, raw: str, now: float, reason: str, code: int = 100003) -> None:
        self.protocol_errors.append(reason)
        self.received.append(Received("other", now, raw, raw))
        title = "malformed_frame" if code == 100003 else "invalid_media"
        payload = {"code": code, "title": title, "detail": reason}
        await self._send({"event": "error", "payload": payload, "stream_id": self.stream_id})

    def _shape_ok(self, msg: dict[str, Any], keys: set[str]) -> bool:
        extra = set(msg) - keys
        return extra <= {"stream_id"} and msg.get("stream_id", self.stream_id) == self.stream_id

    async def _handle(self, message: str | bytes, now: float) -> None:
        if isinstance(message, bytes):
            await self._error(repr(message[:64]), now, "binary frame (Telnyx takes JSON text frames)")
            return
        try:
            msg = json.loads(message)
        except ValueError:
            await self._error(message, now, "invalid JSON")
            return
        if not isinstance(msg, dict):
            await self._error(message, now, "message is not a JSON object")
            return
        event = msg.get("event")
        if event == "media":
            await self._on_media(msg, message, now)
        elif event == "mark":
            mark = msg.get("mark")
            if (
                not self._shape_ok(msg, {"event", "mark"})
                or not isinstance(mark, dict)
                or set(mark) != {"name"}
            ):
                await self._error(message, now, "mark: fields must be event, mark{name} (+ stream_id)")
            elif not isinstance(mark["name"], str):
                await self._error(message, now, "mark: name is not a string")
            else:
                self.received.append(Received("mark", now, mark["name"], message))
                await self._playback.mark(mark["name"], now)
        elif event == "clear":
            if not self._shape_ok(msg, {"event"}):
                await self._error(message, now, "clear: fields must be event (+ stream_id)")
            else:
                self.received.append(Received("clear", now, None, message))
                self.clear_times.append(now)
                await self._playback.clear(now)
        else:
            await self._error(message, now, f"unknown event {event!r}")
        async with self._changed:
            self._changed.notify_all()

    async def _on_media(self, msg: dict[str, Any], raw: str, now: float) -> None:
        media = msg.get("media")
        if (
            not self._shape_ok(msg, {"event", "media"})
            or not isinstance(media, dict)
            or set(media) != {"payload"}
        ):
            await self._error(raw, now, "media: fields must be event, media{payload} (+ stream_id)")
            return
        payload = media["payload"]
        try:
            data = base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
        except (binascii.Error, ValueError):
            data = None
        if data is None or not data:
            await self._error(raw, now, "media: payload is not base64 audio", code=100004)
            return
        if self.codec == "L16":
            if len(data) % 2:
                await self._error(raw, now, "media: L16 payload splits a sample", code=100004)
                return
            data = audioop.byteswap(data, 2)  # network order on the wire -> LE for observation
        self.received.append(Received("media", now, data, raw))
        self._playback.append(data, now, self._spec.bytes_per_second)

    async def _echo_mark(self, name: str, cleared: bool) -> None:
        self.marks_echoed.append(EchoedMark(name, time.monotonic(), cleared))
        await self._send({"event": "mark", "stream_id": self.stream_id, "mark": {"name": name}})

    # ---- observations ---------------------------------------------------------------------------------

    def caller_audio(self) -> bytes:
        """Everything the caller sent, joined, before the wire swap (LE PCM16 for L16, mu-law for PCMU)."""
        return b"".join(f.audio for f in self.sent_frames)

    def agent_audio(self) -> bytes:
        """Every media payload the server sent (LE PCM16 for L16), including audio later cleared."""
        return b"".join(
            r.payload for r in self.received if r.kind == "media" and isinstance(r.payload, bytes)
        )

    def played_audio(self) -> bytes:
        return self._playback.played(time.monotonic())
