"""Telnyx webhook signatures: Ed25519 over ``"{telnyx-timestamp}|{raw body}"`` (telnyx.md §4).

Contract:

* Headers ``telnyx-signature-ed25519`` (base64 of a 64-byte signature) and ``telnyx-timestamp`` (Unix
  seconds, decimal), looked up case-insensitively.
* The signed message is ``timestamp`` as sent, ``|``, then the raw request body byte for byte: never a
  re-serialised JSON document.
* The key is the account's Ed25519 public key as base64 of its 32 raw bytes (Mission Control).
* Replay window (API.md B.1): a timestamp older than :data:`MAX_AGE_S` or more than :data:`MAX_SKEW_S`
  ahead of our clock is refused, even with a valid signature.
* Every failure (missing header, malformed base64, bad key, forged signature) is just ``False``: the caller
  answers 403 and logs the reason it chooses, never the key.
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "MAX_AGE_S",
    "MAX_SKEW_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "load_public_key",
    "verify_webhook",
]

SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
#: Oldest accepted timestamp, in seconds before now (Telnyx's SDK tolerance).
MAX_AGE_S = 300
#: Furthest accepted timestamp in the future: a little clock skew, not a pre-signed replay.
MAX_SKEW_S = 30


@functools.lru_cache(maxsize=8)
def load_public_key(public_key: str) -> Ed25519PublicKey:
    """The key object for a base64 raw Ed25519 public key. Raises ``ValueError`` if it is not one."""
    try:
        raw = base64.b64decode(public_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("Telnyx public key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError("Telnyx public key must decode to 32 bytes (a raw Ed25519 public key)")
    return Ed25519PublicKey.from_public_bytes(raw)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def verify_webhook(
    public_key: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> bool:
    """Whether ``body`` with ``headers`` is a fresh webhook signed by the holder of ``public_key``.

    ``now`` (Unix seconds) defaults to the current time; tests pass a fixed clock.
    """
    signature_b64 = _header(headers, SIGNATURE_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if not signature_b64 or not timestamp or not public_key:
        return False
    timestamp = timestamp.strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    current = time.time() if now is None else now
    age = current - int(timestamp)
    if age > MAX_AGE_S or age < -MAX_SKEW_S:
        return False
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
        key = load_public_key(public_key)
    except (binascii.Error, ValueError):
        return False
    if len(signature) != 64:
        return False
    try:
        key.verify(signature, timestamp.encode("ascii") + b"|" + body)
    except InvalidSignature:
        return False
    return True
