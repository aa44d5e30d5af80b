"""The carrier side of one Twilio Media Stream: ``FakeCall`` (twilio.md §3, audio.md §7).

A ``FakeCall`` is what Twilio is to the product's media WebSocket: the WebSocket *client*. It sends
``connected`` and ``start``, then one ``media`` frame (160 bytes of mu-law) every 20 ms of wall time on an
absolute-deadline clock (no drift: frame ``n`` is due at ``t0 + n * 20 ms``), carrying queued caller audio or
mu-law silence (0xFF). ``sequenceNumber`` counts every message after ``connected`` (``start`` is ``"1"``);
``chunk`` counts media frames from ``"1"``; ``timestamp`` is ``(chunk - 1) * 20`` ms.

What the server sends back goes through a model of Twilio's **playback buffer**: each outbound ``media``
payload is appended and plays at 8000 bytes/s of wall time after whatever is already queued; a ``mark`` is
echoed when playback reaches it (at once if nothing is buffered); ``clear`` drops everything not yet played
and echoes every pending mark at once. Messages that break the protocol (wrong ``streamSid``, missing or
extra fields, bad base64, unknown events, binary frames) are dropped, as Twilio drops them with warning
31951, and listed in ``call.protocol_errors`` so a test can assert there were none.

All times are ``time.monotonic()`` values. Created by ``FakeTwilio`` (``tests/fakes/twilio_rest.py``);
never construct one by hand.
"""

from __future__ import annotations

import array
import base64
import binascii
import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import soxr
from websockets.asyncio.client import ClientConnection

from tests.fakes._media_stream import MediaStreamSide

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FRAME_BYTES = 160
PLAYBACK_BYTES_PER_SECOND = 8000
MULAW_SILENCE = 0xFF

ReceivedKind = Literal["media", "mark", "clear", "other"]


@dataclass(frozen=True)
class Received:
    """One message the server sent. ``payload``: decoded mu-law bytes (media), the mark name (mark),
    ``None`` (clear), or the raw text (other, including malformed messages)."""

    kind: ReceivedKind
    time: float
    payload: bytes | str | None
    raw: str


@dataclass(frozen=True)
class EchoedMark:
    """A mark the fake echoed back. ``cleared`` is True when a ``clear`` flushed it before it played."""

    name: str
    time: float
    cleared: bool


def pcm16_16k_to_mulaw_8k(pcm: bytes) -> bytes:
    """Caller audio as Twilio carries it: band-limited to 4 kHz (soxr), then G.711 mu-law (stdlib
    ``audioop``) -- deliberately not getpatter's codecs. ``audioop.ratecv`` alone would alias the
    top octave back into the voice band, which a real phone network does not do."""
    if len(pcm) % 2:
        raise ValueError("PCM16 audio must have an even number of bytes")
    down = soxr.resample(np.frombuffer(pcm, dtype="<i2"), 16000, 8000, quality="HQ")
    return audioop.lin2ulaw(np.asarray(down, dtype="<i2").tobytes(), 2)


def tone_pcm16_16k(ms: float, freq: float = 300.0, dbfs: float = -12.0) -> bytes:
    """A sine tone with 5 ms fades: synthetic "speech" a VAD will pick up."""
    n = int(16000 * ms / 1000)
    amp = 32767 * 10 ** (dbfs / 20)
    fade = min(80, n // 2)
    samples = array.array("h", bytes(2 * n))
    for i in range(n):
        gain = min(1.0, (i + 1) / fade, (n - i) / fade) if fade else 1.0
        samples[i] = int(amp * gain * math.sin(2 * math.pi * freq * i / 16000))
    return samples.tobytes()


@dataclass(eq=False)
class FakeCall(MediaStreamSide):
    """One call as Twilio sees it: the REST resource state plus, once connected, its media stream.

    Caller side: ``say``, ``say_tone``, ``silence``, ``dtmf``, ``hangup``, ``drop``, ``send_raw``.
    Observations: ``received``, ``agent_audio_mulaw()``, ``played_audio_mulaw()``, ``clear_times``,
    ``marks_echoed``, ``speech_onsets``, ``protocol_errors``, ``ended_by``, ``close_code``.
    Waits (each raises ``TimeoutError`` with a clear message): ``wait_for_agent_audio``,
    ``wait_agent_quiet``, ``wait_closed``.
    """

    sid: str
    account_sid: str
    from_: str
    to: str
    direction: str
    status: str = "queued"
    stream_sid: str | None = None
    stream_url: str | None = None
    custom_params: dict[str, str] = field(default_factory=dict)
    #: Form of the Calls.json create request (outbound calls only).
    create_form: dict[str, str | list[str]] = field(default_factory=dict)
    #: TwiML the call ran first (answer of the voice webhook, or the Twiml given at create).
    twiml: str | None = None
    #: TwiML / Url sent later with a call update, in order.
    twiml_updates: list[str] = field(default_factory=list)
    #: Who ended the stream: caller-hangup, caller-drop, server-closed, rest-completed, rest-canceled,
    #: rest-twiml, rest-url. ``None`` while live.
    ended_by: str | None = None
    #: Close code the server sent when it closed the socket itself.
    close_code: int | None = None
    #: ``<Reject reason>`` when the voice webhook refused the call (it was never answered).
    rejected: str | None = None
    received: list[Received] = field(default_factory=list)
    clear_times: list[float] = field(default_factory=list)
    marks_echoed: list[EchoedMark] = field(default_factory=list)
    speech_onsets: list[float] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)
    dtmf_sent: list[str] = field(default_factory=list)
    media_frames_sent: int = 0
    started_at: float | None = None

    SEQ_KEY = "sequenceNumber"

    def __post_init__(self) -> None:
        self._init_stream(self._echo_mark)
        self.on_end: Callable[[FakeCall], None] | None = None

    # ---- lifecycle (driven by FakeTwilio) -------------------------------------------------------------

    async def _attach(self, ws: ClientConnection, stream_sid: str, custom_params: dict[str, str]) -> None:
        """Send ``connected`` and ``start``, then start the pacer, reader and mark pump."""
        self._ws = ws
        self.stream_sid = stream_sid
        self.custom_params = dict(custom_params)
        self.status = "in-progress"
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "event": "start",
            "start": {
                "accountSid": self.account_sid,
                "streamSid": stream_sid,
                "callSid": self.sid,
                "tracks": ["inbound"],
                "customParameters": self.custom_params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": stream_sid,
        }
        await self._send(start)
        self.started_at = time.monotonic()
        self._start_stream_tasks("twilio")

    @property
    def call_label(self) -> str:
        return self.sid

    def _stop_message(self) -> dict[str, Any]:
        return {
            "event": "stop",
            "stop": {"accountSid": self.account_sid, "callSid": self.sid},
            "streamSid": self.stream_sid,
        }

    def _on_finish(self) -> None:
        if self.status in ("queued", "ringing", "in-progress"):
            self.status = "completed"
        if self.on_end is not None:
            self.on_end(self)

    # ---- caller actions -------------------------------------------------------------------------------

    async def say(self, pcm16_16k: bytes) -> None:
        """Queue caller speech (PCM16 LE mono 16 kHz) and return once its last byte has been sent.

        ``speech_onsets`` gets the time its first frame went out. Returns early if the stream ends.
        """
        await self._queue(pcm16_16k_to_mulaw_8k(pcm16_16k), is_speech=True)

    async def say_tone(self, ms: float, freq: float = 300.0, dbfs: float = -12.0) -> None:
        """Synthetic caller "speech": a ``ms``-long sine at ``dbfs``; see ``say``."""
        await self.say(tone_pcm16_16k(ms, freq, dbfs))

    async def silence(self, ms: float) -> None:
        """Queue ``ms`` of explicit mu-law silence (not recorded as speech) and wait until it is sent."""
        await self._queue(bytes([MULAW_SILENCE]) * int(8 * ms), is_speech=False)

    async def dtmf(self, digit: str) -> None:
        """Send a ``dtmf`` message (``dtmf.track`` is ``inbound_track``, as Twilio sends it)."""
        if not self.connected:
            raise RuntimeError(f"call {self.sid} has no live media stream")
        self.dtmf_sent.append(digit)
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    # ---- pacer ----------------------------------------------------------------------------------------

    async def _pace(self) -> None:
        await self._pace_frames(self._send_frame)

    async def _send_frame(self, n: int, now: float) -> bool:
        frame, _, finished = self._take_frame(FRAME_BYTES, bytes([MULAW_SILENCE]), now)
        ok = await self._send(
            {
                "event": "media",
                "media": {
                    "track": "inbound",
                    "chunk": str(n),
                    "timestamp": str((n - 1) * 20),
                    "payload": base64.b64encode(frame).decode("ascii"),
                },
                "streamSid": self.stream_sid,
            }
        )
        if ok:
            self.media_frames_sent = n
        self._release(finished)
        return ok

    # ---- what the server sends ------------------------------------------------------------------------

    def _error(self, raw: str, now: float, reason: str) -> None:
        self.protocol_errors.append(reason)
        self.received.append(Received("other", now, raw, raw))

    async def _handle(self, message: str | bytes, now: float) -> None:
        if isinstance(message, bytes):
            self._error(repr(message[:64]), now, "binary frame (Twilio takes text frames only)")
            return
        try:
            msg = json.loads(message)
        except ValueError:
            self._error(message, now, "invalid JSON")
            return
        if not isinstance(msg, dict):
            self._error(message, now, "message is not a JSON object")
            return
        event = msg.get("event")
        if msg.get("streamSid") != self.stream_sid:
            self._error(message, now, f"{event}: wrong or missing streamSid {msg.get('streamSid')!r}")
            return
        if event == "media":
            await self._on_media(msg, message, now)
        elif event == "mark":
            mark = msg.get("mark")
            if (
                set(msg) != {"event", "streamSid", "mark"}
                or not isinstance(mark, dict)
                or set(mark) != {"name"}
            ):
                self._error(message, now, "mark: fields must be exactly event, streamSid, mark{name}")
            elif not isinstance(mark["name"], str):
                self._error(message, now, "mark: name is not a string")
            else:
                self.received.append(Received("mark", now, mark["name"], message))
                await self._playback.mark(mark["name"], now)
        elif event == "clear":
            if set(msg) != {"event", "streamSid"}:
                self._error(message, now, "clear: fields must be exactly event, streamSid")
            else:
                self.received.append(Received("clear", now, None, message))
                self.clear_times.append(now)
                await self._playback.clear(now)
        else:
            self._error(message, now, f"unknown event {event!r}")
        async with self._changed:
            self._changed.notify_all()

    async def _on_media(self, msg: dict[str, Any], raw: str, now: float) -> None:
        media = msg.get("media")
        if (
            set(msg) != {"event", "streamSid", "media"}
            or not isinstance(media, dict)
            or set(media) != {"payload"}
        ):
            self._error(raw, now, "media: fields must be exactly event, streamSid, media{payload}")
            return
        payload = media["payload"]
        try:
            data = base64.b64decode(payload, validate=True) if isinstance(payload, str) else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            self._error(raw, now, "media: payload is not base64")
            return
        self.received.append(Received("media", now, data, raw))
        self._playback.append(data, now, PLAYBACK_BYTES_PER_SECOND)

    async def _echo_mark(self, name: str, cleared: bool) -> None:
        self.marks_echoed.append(EchoedMark(name, time.monotonic(), cleared))
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    # ---- observations ---------------------------------------------------------------------------------

    def agent_audio_mulaw(self) -> bytes:
        """Every media payload the server sent, joined (including audio later cleared)."""
        return b"".join(
            r.payload for r in self.received if r.kind == "media" and isinstance(r.payload, bytes)
        )

    def played_audio_mulaw(self) -> bytes:
        """What the caller has heard so far: played audio only, cleared audio excluded."""
        return self._playback.played(time.monotonic())

    def playback_queued_ms(self) -> float:
        """Milliseconds of agent audio buffered and not yet played."""
        return self._playback.queued_ms(time.monotonic())

    @property
    def pending_marks(self) -> list[str]:
        """Marks waiting for their audio to play."""
        return self._playback.pending_marks
