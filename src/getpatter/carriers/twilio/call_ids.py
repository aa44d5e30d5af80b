"""Twilio call ids, checked where they enter (webhooks, the media-socket path, ``start`` frames).

CallSids are ``CA`` + 32 hex digits; anything else is refused with a clean 400/close, never carried on
to REST URLs or file names.
"""

from __future__ import annotations

import re

__all__ = ["TWILIO_CALL_SID", "is_twilio_call_sid"]

TWILIO_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")


def is_twilio_call_sid(value: object) -> bool:
    return isinstance(value, str) and TWILIO_CALL_SID.fullmatch(value) is not None
