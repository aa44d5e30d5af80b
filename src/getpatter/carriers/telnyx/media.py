"""Telnyx media-streaming WebSocket protocol for one stream (telnyx.md §5), codec selectable.

Telnyx sends ``connected``, ``start`` (``stream_id`` at the top level), ``media`` (raw RTP payload, base64),
``dtmf``, ``mark`` echoes, ``error`` and ``stop``; we send ``media``, ``mark`` and ``clear``, which need no
stream address. The codec is fixed per stream by what we asked for on ``answer``:

* ``L16`` at 16 kHz (the default): RTP L16 is network byte order (**big-endian**, RFC 3551; telnyx.md
  §5.3 and audio.md §1), while getpatter's PCM16 is little-endian. Inbound payloads are byte-swapped to
  little-endian, outbound ones back to big-endian; ``wire_format`` is ``PCM16_16K`` (the form the call
  layer sees after the swap), so the pipeline hands the caller's samples to STT untouched.
* ``PCMU`` (mu-law 8 kHz) and ``PCMA`` pass bytes through.

Anything that does not follow the protocol raises ``MediaProtocolError``, never another exception, so the
socket loop drops that frame and carries on.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from getpatter._ratelog import RateLimitedLog
from getpatter.audio.format import ALAW_8K, MULAW_8K, PCM16_16K, AudioFormat
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
from getpatter.carriers.telnyx.call_ids import is_telnyx_call_control_id

__all__ = ["MAX_MESSAGE_BYTES", "WIRE_FORMATS", "TelnyxMediaCodec"]

log = logging.getLogger("getpatter.carriers.telnyx")

#: Stream codec -> the format the call layer sees (L16 after the byte swap).
WIRE_FORMATS: dict[str, AudioFormat] = {"L16": PCM16_16K, "PCMU": MULAW_8K, "PCMA": ALAW_8K}
#: ``media_format.encoding`` spellings (old docs use MIME names) -> codec.
_ENCODING_ALIASES = {
    "L16": "L16",
    "AUDIO/L16": "L16",
    "PCMU": "PCMU",
    "AUDIO/X-MULAW": "PCMU",
    "AUDIO/PCMU": "PCMU",
    "PCMA": "PCMA",
    "AUDIO/X-ALAW": "PCMA",
    "AUDIO/PCMA": "PCMA",
}
_CLEAR = '{"event":"clear"}'
_MEDIA_PREFIX = '{"event":"media","media":{"payload":"'
_MEDIA_SUFFIX = '"}}'
#: ``error`` frames kept per stream (the most recent); ``error_count`` counts them all.
MAX_KEPT_ERRORS = 32


def _swap16(data: bytes) -> bytes:
    """Swap each 16-bit sample's bytes: big-endian L16 <-> little-endian PCM16 (an involution)."""
    return np.frombuffer(data, dtype=np.uint16).byteswap().tobytes()


def _custom_parameters(raw: object) -> dict[str, str]:
    """``start.custom_parameters``: an object per the doc; the ``[{name, value}]`` list that
    ``streaming_start`` takes is accepted too, in case Telnyx passes it through as given."""
    if raw is None:
        return {}
    if isinstance(raw, list):
        pairs: list[tuple[object, object]] = []
        for item in raw:
            if not isinstance(item, dict):
                raise MediaProtocolError("Telnyx start.custom_parameters list holds a non-object")
            pairs.append((item.get("name"), item.get("value")))
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise MediaProtocolError("Telnyx start.custom_parameters is neither an object nor a list")
    params: dict[str, str] = {}
    for key, value in pairs:
        if not isinstance(key, str) or not isinstance(value, str):
            raise MediaProtocolError(f"Telnyx custom parameter {str(key)[:64]!r} is not a string pair")
        params[key] = value
    return params


class TelnyxMediaCodec(MediaCodec):
    """Parses what Telnyx sends and builds what the server sends back, for one media stream.

    ``codec`` is the stream codec requested on ``answer`` (``"L16"`` or ``"PCMU"``; ``"PCMA"`` works too).
    ``params`` (e.g. ``caller``/``callee`` from the stream URL's query string) seed the ``custom_params``
    of :class:`MediaStarted`; the ``start`` frame's ``custom_parameters`` are added to them, and its
    ``from``/``to`` fill ``caller``/``callee`` when those are missing.
    """

    def __init__(self, codec: str = "L16", *, params: Mapping[str, str] | None = None) -> None:
        fmt = WIRE_FORMATS.get(codec.upper())
        if fmt is None:
            raise ValueError(f"Telnyx stream codec must be one of {sorted(WIRE_FORMATS)}, got {codec!r}")
        self.codec = codec.upper()
        self.wire_format: AudioFormat = fmt
        self._swap = self.codec == "L16"
        self._params = dict(params or {})
        self._out_carry = b""  # an odd trailing byte of outbound L16, completed by the next chunk
        self.stream_id: str | None = None
        self.call_control_id: str | None = None
        self.client_state: str | None = None
        self.media_format: dict[str, Any] | None = None
        #: The last ``error`` frames Telnyx sent, as ``(code, title)``: e.g. malformed frames we sent.
        self.errors: deque[tuple[str, str]] = deque(maxlen=MAX_KEPT_ERRORS)
        self._error_log = RateLimitedLog(log, "Telnyx media stream reported error(s)")

    # ---- inbound -------------------------------------------------------------------------------------

    def parse(self, message: str | bytes) -> CarrierEvent | None:
        """Decode one Telnyx message; ``None`` for ignored ones (outbound track, errors, unknown events)."""
        msg, event = load_frame(message, "Telnyx")
        if event == "media":
            return self._parse_media(msg)
        if not isinstance(event, str):
            raise MediaProtocolError("Telnyx message lacks a string 'event' field")
        if event == "start":
            return self._parse_start(msg)
        if event == "mark":
            return MediaMark(field_str(field_obj(msg, "mark", "Telnyx"), "name", "mark", "Telnyx"))
        if event == "dtmf":
            return dtmf_event(msg, "Telnyx")
        if event == "stop":
            return STOPPED
        if event == "connected":
            return CONNECTED
        if event == "error":
            self._on_error(msg)
        return None

    def _parse_media(self, msg: dict[str, Any]) -> MediaAudio | None:
        media = msg.get("media")
        if not isinstance(media, dict):
            raise MediaProtocolError("Telnyx media message lacks the 'media' object")
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise MediaProtocolError("Telnyx media message lacks string field 'payload'")
        if media.get("track", "inbound") != "inbound":
            return None  # our own audio echoed back with both_tracks: never feed it to STT
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise MediaProtocolError("Telnyx media payload is not valid base64") from None
        if self._swap:
            if len(data) % 2:
                raise MediaProtocolError(f"Telnyx L16 payload of {len(data)} bytes splits a sample")
            data = _swap16(data)
        return MediaAudio(data)

    def _parse_start(self, msg: dict[str, Any]) -> MediaStarted:
        if self.call_control_id is not None:
            # One stream, one start: a second one must not re-address or re-describe the stream.
            raise MediaProtocolError("duplicate Telnyx start message on a started stream; ignored")
        start = field_obj(msg, "start", "Telnyx")
        stream_id = msg.get("stream_id", start.get("stream_id"))
        if not isinstance(stream_id, str) or not stream_id:
            raise MediaProtocolError("Telnyx start message lacks 'stream_id'")
        call_control_id = field_str(start, "call_control_id", "start", "Telnyx")
        if not is_telnyx_call_control_id(call_control_id):
            raise MediaProtocolError(f"Telnyx start call_control_id {call_control_id[:40]!r} is malformed")
        params = dict(self._params)
        params.update(_custom_parameters(start.get("custom_parameters")))
        for key, field in (("caller", "from"), ("callee", "to")):
            value = start.get(field)
            if not params.get(key) and isinstance(value, str):
                params[key] = value
        fmt = start.get("media_format")
        if isinstance(fmt, dict):
            self.media_format = fmt
            self._check_format(fmt)
        client_state = start.get("client_state")
        self.client_state = client_state if isinstance(client_state, str) else None
        self.stream_id = stream_id
        self.call_control_id = call_control_id
        return MediaStarted(stream_id=stream_id, call_id=call_control_id, custom_params=params)

    def _check_format(self, fmt: dict[str, Any]) -> None:
        """Warn (loudly, once) when Telnyx streams another codec than we asked for: the audio is garbage."""
        encoding = fmt.get("encoding")
        codec = _ENCODING_ALIASES.get(encoding.upper()) if isinstance(encoding, str) else None
        rate = fmt.get("sample_rate")
        if codec != self.codec or (isinstance(rate, int) and rate != self.wire_format.sample_rate):
            log.warning(
                "Telnyx stream announces media_format %r but %s/%d was requested; audio will be wrong",
                fmt,
                self.codec,
                self.wire_format.sample_rate,
            )

    def _on_error(self, msg: dict[str, Any]) -> None:
        body = msg.get("payload") or msg.get("error")
        if not isinstance(body, dict):
            body = {}
        code, title = str(body.get("code", "?"))[:32], str(body.get("title", "?"))[:100]
        self.errors.append((code, title))
        self._error_log(f"stream {self.stream_id}: {code} ({title})")

    @property
    def error_count(self) -> int:
        """Every ``error`` frame of this stream, including those no longer kept in ``errors``."""
        return self._error_log.count

    # ---- outbound ------------------------------------------------------------------------------------

    def audio(self, payload: bytes) -> str:
        """A ``media`` message playing ``payload`` (in ``wire_format``; 20 ms to 30 s of audio)."""
        if self._swap:
            if self._out_carry:
                payload = self._out_carry + payload
                self._out_carry = b""
            if len(payload) % 2:
                self._out_carry = payload[-1:]
                payload = payload[:-1]
            payload = _swap16(payload)
        return _MEDIA_PREFIX + base64.b64encode(payload).decode("ascii") + _MEDIA_SUFFIX

    def mark(self, name: str) -> str:
        """A ``mark`` Telnyx echoes once the media before it has played (at once if nothing is queued)."""
        return '{"event":"mark","mark":{"name":' + orjson.dumps(name).decode() + "}}"

    def clear(self) -> str:
        """A ``clear``: Telnyx stops playback, drops its queue and echoes every pending mark."""
        self._out_carry = b""
        return _CLEAR
