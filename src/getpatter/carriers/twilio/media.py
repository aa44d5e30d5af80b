"""Twilio Media Streams (bidirectional ``<Connect><Stream>``) wire protocol for one stream (twilio.md §3).

Runs once per 20 ms frame per call, so the hot paths avoid needless work: inbound ``media`` is one
``orjson.loads`` plus one base64 decode; outbound ``media`` is a string concatenation around a prefix built
once when ``start`` arrives. Anything that does not follow the protocol raises ``MediaProtocolError``, never
another exception, so the socket loop can drop the frame and carry on as Twilio itself does.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from getpatter.audio.format import MULAW_8K, AudioFormat
from getpatter.carriers._frames import (
    CONNECTED,
    MAX_MESSAGE_BYTES,
    STOPPED,
    dtmf_event,
    field_obj,
    field_str,
    load_frame,
)
from getpatter.carriers.base import (
    CarrierEvent,
    MediaAudio,
    MediaCodec,
    MediaMark,
    MediaProtocolError,
    MediaStarted,
)
from getpatter.carriers.twilio.call_ids import is_twilio_call_sid

__all__ = ["MAX_MESSAGE_BYTES", "TwilioMediaCodec"]


class TwilioMediaCodec(MediaCodec):
    """Parses what Twilio sends and builds what the server sends back, for one media stream.

    The stream SID is learnt from ``start`` (or given up front, e.g. when resuming); ``audio``, ``mark``
    and ``clear`` raise ``RuntimeError`` before it is known, because Twilio rejects messages without the
    current ``streamSid`` (warning 31951).
    """

    wire_format: AudioFormat = MULAW_8K

    def __init__(self, stream_sid: str | None = None) -> None:
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.account_sid: str | None = None
        self._media_prefix = ""
        self._mark_prefix = ""
        self._clear = ""
        if stream_sid is not None:
            self._set_stream(stream_sid)

    def _set_stream(self, stream_sid: str) -> None:
        self.stream_sid = stream_sid
        sid_json = orjson.dumps(stream_sid).decode()
        self._media_prefix = '{"event":"media","streamSid":' + sid_json + ',"media":{"payload":"'
        self._mark_prefix = '{"event":"mark","streamSid":' + sid_json + ',"mark":{"name":'
        self._clear = '{"event":"clear","streamSid":' + sid_json + "}"

    # ---- inbound -------------------------------------------------------------------------------------

    def parse(self, message: str | bytes) -> CarrierEvent | None:
        """Decode one Twilio message; ``None`` for unknown events and for the (unexpected) outbound track."""
        msg, event = load_frame(message, "Twilio")
        if event == "media":
            return self._parse_media(msg)
        if not isinstance(event, str):
            raise MediaProtocolError("Twilio message lacks a string 'event' field")
        if event == "start":
            return self._parse_start(msg)
        if event == "mark":
            return MediaMark(field_str(field_obj(msg, "mark", "Twilio"), "name", "mark", "Twilio"))
        if event == "dtmf":
            return dtmf_event(msg, "Twilio")
        if event == "stop":
            sid = msg.get("streamSid")
            if self.stream_sid is not None and isinstance(sid, str) and sid != self.stream_sid:
                raise MediaProtocolError("Twilio stop for another stream; ignored")
            return STOPPED
        if event == "connected":
            return CONNECTED
        return None

    @staticmethod
    def _parse_media(msg: dict[str, Any]) -> MediaAudio | None:
        media = msg.get("media")
        if not isinstance(media, dict):
            raise MediaProtocolError("Twilio media message lacks the 'media' object")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise MediaProtocolError("Twilio media message lacks string field 'payload'")
        if media.get("track", "inbound") != "inbound":
            return None
        try:
            return MediaAudio(base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            raise MediaProtocolError("Twilio media payload is not valid base64") from None

    def _parse_start(self, msg: dict[str, Any]) -> MediaStarted:
        if self.call_sid is not None:
            # One stream, one start: a second one must not re-address our outbound audio.
            raise MediaProtocolError("duplicate Twilio start message on a started stream; ignored")
        start = field_obj(msg, "start", "Twilio")
        stream_sid = start.get("streamSid", msg.get("streamSid"))
        if not isinstance(stream_sid, str) or not stream_sid:
            raise MediaProtocolError("Twilio start message lacks 'streamSid'")
        call_sid = field_str(start, "callSid", "start", "Twilio")
        if not is_twilio_call_sid(call_sid):
            raise MediaProtocolError(f"Twilio start callSid {call_sid[:40]!r} is not a CallSid (CA + 32 hex)")
        raw_params = start.get("customParameters", {})
        if not isinstance(raw_params, dict):
            raise MediaProtocolError("Twilio start.customParameters is not an object")
        params: dict[str, str] = {}
        for key, value in raw_params.items():
            if not isinstance(value, str):
                raise MediaProtocolError(f"Twilio custom parameter {key[:64]!r} is not a string")
            params[key] = value
        account_sid = start.get("accountSid")
        self.account_sid = account_sid if isinstance(account_sid, str) else None
        self.call_sid = call_sid
        self._set_stream(stream_sid)
        return MediaStarted(stream_id=stream_sid, call_id=call_sid, custom_params=params)

    # ---- outbound ------------------------------------------------------------------------------------

    def _require_stream(self) -> None:
        if self.stream_sid is None:
            raise RuntimeError("Twilio stream not started yet: no streamSid to address messages to")

    def audio(self, payload: bytes) -> str:
        """A ``media`` message playing ``payload`` (raw mu-law 8 kHz, any length, no header)."""
        if self.stream_sid is None:
            self._require_stream()
        return self._media_prefix + base64.b64encode(payload).decode("ascii") + '"}}'

    def mark(self, name: str) -> str:
        """A ``mark`` Twilio echoes once everything sent before it has played (or at once if cleared)."""
        self._require_stream()
        return self._mark_prefix + orjson.dumps(name).decode() + "}}"

    def clear(self) -> str:
        """A ``clear``: Twilio drops buffered audio and echoes every pending mark."""
        self._require_stream()
        return self._clear
