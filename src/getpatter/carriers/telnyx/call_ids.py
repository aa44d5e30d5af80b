"""Telnyx call ids, checked where they enter (webhooks, the media-socket path, ``start`` frames).

``call_control_id`` values are opaque (``v3:`` + base64url today, older ones plain base64 with ``/`` and
``+``), so only their alphabet and length are checked. Anything else is refused with a clean 400/close,
never carried on to REST URLs or file names.
"""

from __future__ import annotations

import re

__all__ = ["TELNYX_CALL_CONTROL_ID", "is_telnyx_call_control_id"]

TELNYX_CALL_CONTROL_ID = re.compile(r"[A-Za-z0-9:_.+/=-]{1,256}")


def is_telnyx_call_control_id(value: object) -> bool:
    return isinstance(value, str) and TELNYX_CALL_CONTROL_ID.fullmatch(value) is not None
