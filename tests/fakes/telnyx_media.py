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
import collections
import contextlib
import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.fakes._patience import patient
from tests.fakes._playback import PlaybackBuffer
from tests.fakes.twilio_media import EchoedMark, Received, pcm16_16k_to_mulaw_8k, tone_pcm16_16k

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["CODECS", "EchoedMark", "FakeTelnyxCall", "Received", "SentFrame", "tone_pcm16_16k"]

FRAME_SECONDS = 0.020


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


@dataclass
class _Utterance:
    data: bytes
    is_speech: bool
    done: asyncio.Future[None]
    pos: int = 0


@dataclass(eq=False)
class FakeTelnyxCall:
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

    def __post_init__(self) -> None:
        self.answered = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._spec = CODECS[self.codec]
        self._seq = 0
        self._send_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pacer: asyncio.Task[None] | None = None
        self._utterances: collections.deque[_Utterance] = collections.deque()
        self._playback = PlaybackBuffer(self._echo_mark)

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
        self._tasks.append(asyncio.create_task(self._read(), name=f"fake-telnyx-read-{stream_id}"))
        marks = asyncio.create_task(self._playback.pump_marks(), name=f"fake-telnyx-marks-{stream_id}")
        self._tasks.append(marks)
        self._pacer = asyncio.create_task(self._pace(), name=f"fake-telnyx-pacer-{stream_id}")
        self._tasks.append(self._pacer)

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._closed.is_set()

    async def _send(self, event: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None or self._closed.is_set():
            return False
        async with self._send_lock:
            self._seq += 1
            event["sequence_number"] = str(self._seq)
            try:
                await ws.send(json.dumps(event))
            except ConnectionClosed:
                return False
        return True

    def _finish(self, ended_by: str) -> None:
        if self.ended_by is None:
            self.ended_by = ended_by
        self.state = "hangup"
        if self._pacer is not None:
            self._pacer.cancel()
        for utt in self._utterances:
            if not utt.done.done():
                utt.done.set_result(None)
        self._utterances.clear()
        self._closed.set()

    async def _end_stream(self, ended_by: str, *, send_stop: bool) -> None:
        if self._ws is None or self._closed.is_set():
            if self.ended_by is None:
                self._finish(ended_by)
            return
        ws = self._ws
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        if send_stop:
            stop = {
                "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
                "call_control_id": self.call_control_id,
            }
            await self._send({"event": "stop", "stop": stop, "stream_id": self.stream_id})
        self._finish(ended_by)
        if send_stop:
            with contextlib.suppress(Exception):
                await ws.close(1000)
        else:
            ws.transport.abort()

    async def aclose(self) -> None:
        if self._ws is not None and not self._closed.is_set():
            self._finish(self.ended_by or "teardown")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(1000), 2)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

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

    async def _queue(self, audio: bytes, *, is_speech: bool) -> None:
        if not self.connected:
            raise RuntimeError(f"call {self.call_control_id} has no live media stream")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._utterances.append(_Utterance(audio, is_speech, done))
        await done

    async def dtmf(self, digit: str) -> None:
        await self._send(
            {
                "event": "dtmf",
                "stream_id": self.stream_id,
                "occurred_at": "2026-01-01T12:00:00.000000Z",
                "dtmf": {"digit": digit},
            }
        )

    async def send_raw(self, text: str) -> None:
        if self._ws is None:
            raise RuntimeError("no media stream")
        async with self._send_lock:
            await self._ws.send(text)

    async def hangup(self) -> None:
        """The caller hangs up: ``stop``, then close 1000."""
        await self._end_stream("caller-hangup", send_stop=True)

    async def end_by_carrier(self, ended_by: str) -> None:
        await self._end_stream(ended_by, send_stop=True)

    # ---- pacer ----------------------------------------------------------------------------------------

    def _next_frame(self, now: float) -> tuple[bytes, bool, list[_Utterance]]:
        size = self._spec.frame_bytes
        frame = bytearray()
        speech = False
        finished: list[_Utterance] = []
        while len(frame) < size and self._utterances:
            utt = self._utterances[0]
            if utt.pos == 0 and utt.is_speech:
                self.speech_onsets.append(now)
            speech = speech or utt.is_speech
            take = utt.data[utt.pos : utt.pos + size - len(frame)]
            frame += take
            utt.pos += len(take)
            if utt.pos >= len(utt.data):
                finished.append(self._utterances.popleft())
        if len(frame) < size:
            frame += self._spec.silence[: size - len(frame)]
        return bytes(frame), speech, finished

    async def _pace(self) -> None:
        t0 = time.monotonic()
        n = 0
        while True:
            delay = t0 + n * FRAME_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            audio, speech, finished = self._next_frame(now)
            wire = audioop.byteswap(audio, 2) if self.codec == "L16" else audio
            n += 1
            media = {
                "track": "inbound",
                "chunk": str(n),
                "timestamp": str((n - 1) * 20),
                "payload": base64.b64encode(wire).decode("ascii"),
            }
            ok = await self._send({"event": "media", "media": media, "stream_id": self.stream_id})
            if ok:
                self.sent_frames.append(SentFrame(now, n, audio, wire, speech))
            for utt in finished:
                if not utt.done.done():
                    utt.done.set_result(None)
            if not ok:
                return

    # ---- what the server sends ------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._ws is not None
        ws = self._ws
        try:
            async for message in ws:
                await self._handle(message, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            if not self._closed.is_set():
                self.close_code = ws.close_code
                self._finish("server-closed")
            async with self._changed:
                self._changed.notify_all()

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

    async def wait_for_agent_audio(self, timeout: float = 5.0, *, after: float | None = None) -> float:
        floor = float("-inf") if after is None else after

        def found() -> float | None:
            for r in self.received:
                if r.kind == "media" and r.time > floor:
                    return r.time
            return None

        async def wait() -> float:
            async with self._changed:
                while (t := found()) is None:
                    if self._closed.is_set():
                        raise TimeoutError(
                            f"call {self.call_control_id} ended ({self.ended_by}) before agent audio"
                        )
                    await self._changed.wait()
                return t

        try:
            return await asyncio.wait_for(wait(), patient(timeout))
        except TimeoutError as exc:
            if str(exc):
                raise
            raise TimeoutError(f"no agent audio on call {self.call_control_id} within {timeout} s") from None

    async def wait_agent_quiet(
        self, quiet_ms: float = 500.0, timeout: float = 10.0, *, after_mark: bool = True
    ) -> None:
        await self._playback.wait_quiet(quiet_ms, timeout, self.call_control_id, after_mark=after_mark)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        try:
            await asyncio.wait_for(self._closed.wait(), patient(timeout))
        except TimeoutError:
            raise TimeoutError(
                f"call {self.call_control_id} media stream still open after {timeout} s"
            ) from None
