"""The in-page caller's media protocol: PCM16 both ways, at a rate negotiated by the first message.

The page (``dashboard/static/phone.js`` and its AudioWorklet) speaks it over one WebSocket:

* page -> server, text: ``{"event": "start", "sample_rates": [24000, 16000]}`` first (the rates it can
  use, preferred first; the server takes the first it supports), then ``{"event": "mark", "name": ...}``
  when its playback reaches a mark, ``{"event": "dtmf", "digit": "5"}``, ``{"event": "stop"}`` on hang-up;
* page -> server, binary: caller audio, raw PCM16 little-endian mono at the negotiated rate;
* server -> page, text: ``{"event": "started", "call_id": ..., "sample_rate": ...}`` once the call is
  registered, then ``media`` (``audio``: base64 PCM16), ``mark`` and ``clear``.

The page runs our own code, so the codec is strict: anything that does not follow this (bad JSON, an
unknown event, odd-length or oversized audio, audio before ``start``, a second ``start``) ends the call.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

import orjson

from getpatter.audio.format import PCM16_16K, PCM16_24K, AudioFormat
from getpatter.carriers._frames import DTMF_DIGITS
from getpatter.carriers.base import (
    CarrierEvent,
    MediaAudio,
    MediaCodec,
    MediaDtmf,
    MediaMark,
    MediaProtocolError,
    MediaStarted,
    MediaStopped,
)

__all__ = ["KIND", "MAX_AUDIO_BYTES", "MAX_TEXT_BYTES", "SAMPLE_RATES", "BrowserCodec", "is_browser_call_id"]

#: The carrier name calls from the page are reported under (events, metrics, call logs, dashboard).
KIND = "browser"
#: Wire formats the page may ask for, by sample rate.
SAMPLE_RATES: dict[int, AudioFormat] = {16000: PCM16_16K, 24000: PCM16_24K}
#: One binary frame: at most half a second of 24 kHz audio (the page sends 20 ms frames).
MAX_AUDIO_BYTES = 24_000
#: One text frame (start, mark, dtmf, stop are all tiny).
MAX_TEXT_BYTES = 4096
MAX_MARK_CHARS = 128
_CALL_ID = re.compile(r"BR[0-9a-f]{32}")
_STOPPED = MediaStopped()


def new_call_id() -> str:
    """A fresh call id: ``BR`` + 32 hex digits (unguessable; it names the call in logs and the API)."""
    return "BR" + secrets.token_hex(16)


def is_browser_call_id(value: str) -> bool:
    return _CALL_ID.fullmatch(value) is not None


def _choose_rate(msg: dict[str, Any]) -> int:
    offered = msg.get("sample_rates")
    if offered is None and "sample_rate" in msg:
        offered = [msg["sample_rate"]]
    if not isinstance(offered, list) or not offered or len(offered) > 8:
        raise MediaProtocolError("start needs 'sample_rates': a short list of sample rates")
    for rate in offered:
        if isinstance(rate, int) and not isinstance(rate, bool) and rate in SAMPLE_RATES:
            return rate
    raise MediaProtocolError(f"no supported sample rate offered (supported: {sorted(SAMPLE_RATES)})")


class BrowserCodec(MediaCodec):
    """One in-page call's media stream. ``wire_format`` is PCM16 16 kHz until ``start`` negotiates."""

    strict = True
    max_message_bytes = MAX_AUDIO_BYTES

    def __init__(self) -> None:
        self.wire_format: AudioFormat = PCM16_16K
        self.call_id: str | None = None

    # ---- page -> server ------------------------------------------------------------------------------
    def parse(self, message: str | bytes) -> CarrierEvent | None:
        if isinstance(message, bytes):
            return self._parse_audio(message)
        if len(message) > MAX_TEXT_BYTES:
            raise MediaProtocolError(f"text message of {len(message)} characters exceeds {MAX_TEXT_BYTES}")
        try:
            msg = orjson.loads(message)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            raise MediaProtocolError("text message is not valid JSON") from None
        if not isinstance(msg, dict):
            raise MediaProtocolError("text message is not a JSON object")
        event = msg.get("event")
        if event == "start":
            return self._parse_start(msg)
        if self.call_id is None:
            raise MediaProtocolError(f"{str(event)[:32]!r} before start")
        if event == "mark":
            name = msg.get("name")
            if not isinstance(name, str) or not 0 < len(name) <= MAX_MARK_CHARS:
                raise MediaProtocolError("mark needs a string 'name'")
            return MediaMark(name)
        if event == "dtmf":
            digit = msg.get("digit")
            if not isinstance(digit, str) or digit not in DTMF_DIGITS:
                raise MediaProtocolError("dtmf needs one DTMF key in 'digit'")
            return MediaDtmf(digit)
        if event == "stop":
            return _STOPPED
        raise MediaProtocolError(f"unknown event {str(event)[:32]!r}")

    def _parse_start(self, msg: dict[str, Any]) -> MediaStarted:
        if self.call_id is not None:
            raise MediaProtocolError("second start on a started stream")
        rate = _choose_rate(msg)
        self.wire_format = SAMPLE_RATES[rate]
        self.call_id = new_call_id()
        return MediaStarted(stream_id=self.call_id, call_id=self.call_id, custom_params={"caller": KIND})

    def _parse_audio(self, data: bytes) -> MediaAudio:
        if self.call_id is None:
            raise MediaProtocolError("audio before start")
        if len(data) > MAX_AUDIO_BYTES:
            raise MediaProtocolError(f"audio frame of {len(data)} bytes exceeds {MAX_AUDIO_BYTES}")
        if len(data) % 2:
            raise MediaProtocolError("audio frame of an odd number of bytes is not PCM16")
        return MediaAudio(data)

    # ---- server -> page ------------------------------------------------------------------------------
    def started_reply(self) -> str | None:
        if self.call_id is None:
            return None
        reply = {"event": "started", "call_id": self.call_id, "sample_rate": self.wire_format.sample_rate}
        return orjson.dumps(reply).decode()

    def audio(self, payload: bytes) -> str:
        return '{"event":"media","audio":"' + base64.b64encode(payload).decode("ascii") + '"}'

    def mark(self, name: str) -> str:
        return '{"event":"mark","name":' + orjson.dumps(name).decode() + "}"

    def clear(self) -> str:
        return '{"event":"clear"}'
