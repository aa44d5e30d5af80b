"""JSON media frames as both Twilio and Telnyx send them: size cap, decoding, typed field access."""

from __future__ import annotations

from typing import Any

import orjson

from getpatter.carriers.base import MediaConnected, MediaDtmf, MediaProtocolError, MediaStopped

#: Larger text frames are refused (API.md B.1: text frames > 1 MiB dropped).
MAX_MESSAGE_BYTES = 1024 * 1024
DTMF_DIGITS = frozenset("0123456789*#ABCD")
CONNECTED = MediaConnected()
STOPPED = MediaStopped()


def load_frame(message: str | bytes, carrier: str) -> tuple[dict[str, Any], Any]:
    """Decode one frame into ``(message, event)``; ``event`` may be missing (media frames are checked
    first on the hot path) but anything malformed raises :class:`MediaProtocolError`."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise MediaProtocolError(f"{carrier} message of {len(message)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        msg = orjson.loads(message)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise MediaProtocolError(f"{carrier} message is not valid JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise MediaProtocolError(f"{carrier} message is not a JSON object")
    return msg, msg.get("event")


def field_obj(msg: dict[str, Any], key: str, carrier: str) -> dict[str, Any]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise MediaProtocolError(f"{carrier} {msg.get('event')!s} message lacks the {key!r} object")
    return value


def field_str(obj: dict[str, Any], key: str, where: str, carrier: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MediaProtocolError(f"{carrier} {where} message lacks string field {key!r}")
    return value


def dtmf_event(msg: dict[str, Any], carrier: str) -> MediaDtmf:
    digit = field_str(field_obj(msg, "dtmf", carrier), "digit", "dtmf", carrier)
    if digit not in DTMF_DIGITS:
        raise MediaProtocolError(f"{carrier} dtmf digit {digit[:8]!r} is not a DTMF key")
    return MediaDtmf(digit)
