"""Telnyx ``client_state``: the base64 JSON that marks a call as placed by getpatter.

Telnyx echoes it on every webhook of the call, so any instance can tell the call is ours and run it
with its first message, without remembering anything.
"""

from __future__ import annotations

import base64
import json

from getpatter.carriers.base import FIRST_MESSAGE_PARAM, MAX_PARAM_CHARS

__all__ = ["CLIENT_STATE_MARK", "decode_client_state", "encode_client_state"]

#: ``client_state`` marker of a Telnyx call placed by getpatter.
CLIENT_STATE_MARK = "getpatter-outbound"


def encode_client_state(first_message: str) -> str:
    """Telnyx ``client_state``: base64 JSON marking the call as ours, with its first message."""
    state = {"getpatter": CLIENT_STATE_MARK, FIRST_MESSAGE_PARAM: first_message[:MAX_PARAM_CHARS]}
    return base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_client_state(value: object) -> dict[str, str] | None:
    """The fields of a ``client_state`` we set, or ``None`` for anything else (absent, foreign, bad)."""
    if not isinstance(value, str) or not value or len(value) > 8192:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (ValueError, RecursionError):  # RecursionError: hostile deeply nested JSON
        return None
    if not isinstance(data, dict) or data.get("getpatter") != CLIENT_STATE_MARK:
        return None
    return {str(k): v for k, v in data.items() if isinstance(v, str)}
