"""Call ids by carrier format, checked where they enter (webhooks, media-socket paths, ``start`` frames).

Twilio CallSids are ``CA`` + 32 hex digits. Telnyx ``call_control_id`` values are opaque (``v3:`` +
base64url today, older ones plain base64 with ``/`` and ``+``), so only their alphabet and length are
checked. Anything else is refused with a clean 400/close, never carried on to REST URLs or file names.
"""

from __future__ import annotations

import re

TWILIO_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
TELNYX_CALL_CONTROL_ID = re.compile(r"[A-Za-z0-9:_.+/=-]{1,256}")


def is_twilio_call_sid(value: object) -> bool:
    return isinstance(value, str) and TWILIO_CALL_SID.fullmatch(value) is not None


def is_telnyx_call_control_id(value: object) -> bool:
    return isinstance(value, str) and TELNYX_CALL_CONTROL_ID.fullmatch(value) is not None


__all__ = ["is_telnyx_call_control_id", "is_twilio_call_sid"]
