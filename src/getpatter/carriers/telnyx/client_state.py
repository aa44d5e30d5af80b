"""Telnyx ``client_state``: the base64 JSON that marks a call as placed by getpatter, signed so it cannot
be forged.

Telnyx echoes it on every webhook of the call, so any instance can tell the call is ours and run it
with its first message, without remembering anything. Because it is echoed verbatim, a constant marker
is something anyone can copy into a forged webhook; the marker here carries an HMAC-SHA256 over its
fields, keyed on ``PATTER_STREAM_SECRET`` when set (shared by several servers), else the Telnyx API key
(both known only to this server and the account owner). ``PATTER_STREAM_SECRET`` is the same list of keys
that signs media-stream tokens: the first signs, every one verifies (rotation). A marker that does not
verify is ignored like any foreign ``client_state``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence

from getpatter.carriers.base import FIRST_MESSAGE_PARAM, MAX_PARAM_CHARS

__all__ = [
    "CLIENT_STATE_MARK",
    "client_state_key",
    "client_state_keys",
    "decode_client_state",
    "encode_client_state",
]

#: ``client_state`` marker of a Telnyx call placed by getpatter.
CLIENT_STATE_MARK = "getpatter-outbound"
#: Telnyx limits ``client_state``; anything longer is not ours.
MAX_CLIENT_STATE_CHARS = 8192
_SIG = "sig"


def client_state_keys(api_key: str) -> tuple[bytes, ...]:
    """The HMAC keys, the signing one first: ``PATTER_STREAM_SECRET`` if set (comma-separated, shared by
    several servers), else the API key."""
    keys = [part.strip() for part in os.environ.get("PATTER_STREAM_SECRET", "").split(",") if part.strip()]
    return tuple(key.encode("utf-8") for key in (keys or [api_key]))


def client_state_key(api_key: str) -> bytes:
    """The key that signs new markers (the first of :func:`client_state_keys`)."""
    return client_state_keys(api_key)[0]


def _mac(key: bytes, fields: dict[str, str]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(key, b"getpatter-client-state\n" + canonical, hashlib.sha256).hexdigest()


def encode_client_state(first_message: str, key: bytes) -> str:
    """Base64 JSON ``{getpatter, first_message, sig}`` for ``dial(client_state=...)``."""
    fields = {"getpatter": CLIENT_STATE_MARK, FIRST_MESSAGE_PARAM: first_message[:MAX_PARAM_CHARS]}
    state = {**fields, _SIG: _mac(key, fields)}
    return base64.b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_client_state(value: object, key: bytes | Sequence[bytes]) -> dict[str, str] | None:
    """The fields of a ``client_state`` this server signed (with ``key``, or any of several keys), or
    ``None`` for anything else (absent, foreign, malformed, unsigned or signed with another key)."""
    keys = [key] if isinstance(key, bytes) else [k for k in key if k]
    if not any(keys) or not isinstance(value, str) or not value or len(value) > MAX_CLIENT_STATE_CHARS:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (ValueError, RecursionError):  # RecursionError: hostile deeply nested JSON
        return None
    if not isinstance(data, dict) or data.get("getpatter") != CLIENT_STATE_MARK:
        return None
    signature = data.pop(_SIG, None)
    fields = {str(k): v for k, v in data.items() if isinstance(v, str)}
    if len(fields) != len(data) or not isinstance(signature, str):
        return None
    presented = signature.encode("ascii", "replace")
    if not any(hmac.compare_digest(presented, _mac(k, fields).encode("ascii")) for k in keys if k):
        return None
    return fields
