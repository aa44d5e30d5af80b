"""Signed media streams: a per-call token proves a media socket belongs to a call this server answered.

Every stream URL the server hands a carrier (Twilio ``<Stream>`` ``<Parameter>``, Telnyx ``stream_url``
query) carries a token minted here; the media socket verifies it on ``start``, before any vendor
connection is opened. Without it anyone who can reach ``/ws/...`` could make the server open paid
STT/LLM/TTS or Realtime sessions with a made-up call id.

Token (ASCII, ~80 characters, under Twilio's ~500-character parameter limit)::

    v1.<expiry unix s>.<nonce>.<base64url HMAC-SHA256>

The MAC covers the call id, the direction (``inbound``/``outbound``), the expiry and the nonce, so a token
is worthless for another call, the other direction, or after it expires. The call id itself is not in the
token: the verifier supplies the id the socket claims, and a mismatch fails the MAC.

Keys: ``PATTER_STREAM_SECRET`` (comma-separated; the first signs, every one verifies, so a key can be
rotated without dropping calls in flight) or else the carrier's own secret (Twilio auth token, Telnyx API
key), so instances behind one load balancer agree without extra configuration. Secrets are never used
raw: each is first bound to this purpose with HMAC (domain separation), and nothing here prints them.

One socket per token: :class:`StreamTokens.spend` records a verified token's nonce until it expires, so a
replay is refused while the call is live and after; only valid tokens are recorded, so forged ones cannot
grow the ledger.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from getpatter.carriers.base import STREAM_TOKEN_PARAM
from getpatter.errors import PatterConfigError

__all__ = [
    "DEFAULT_TTL_S",
    "ENV_SECRET",
    "TOKEN_PARAM",
    "StreamClaim",
    "StreamTokenError",
    "StreamTokens",
]

log = logging.getLogger("getpatter.server")

#: The stream parameter / URL query field carrying the token (each carrier puts it in its stream).
TOKEN_PARAM = STREAM_TOKEN_PARAM
#: A stream must open within this long after the server answered (carriers open it within seconds).
DEFAULT_TTL_S = 300
ENV_SECRET = "PATTER_STREAM_SECRET"
_VERSION = "v1"
_PURPOSE = b"getpatter media stream token v1"
_MAX_TOKEN_CHARS = 256
#: Allowed clock skew between instances (a token minted a little "in the future" is fine).
_MAX_TTL_S = 24 * 3600

Direction = Literal["inbound", "outbound"]
Reason = Literal["missing", "malformed", "forged", "expired", "replayed", "live", "other_call"]

_REASON_TEXT: dict[str, str] = {
    "missing": "no stream token",
    "malformed": "malformed stream token",
    "forged": "stream token does not verify (forged, or issued for another call or direction)",
    "expired": "stream token expired",
    "replayed": "stream token already used by another socket",
    "live": "the call already has a live media socket",
    "other_call": "stream token issued for another call",
}


class StreamTokenError(Exception):
    """A media socket's token was refused; ``reason`` says why (for the log, never for the client)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(_REASON_TEXT[reason])
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class StreamClaim:
    """What a verified token says: the call it was issued for, its direction, expiry and nonce."""

    call_id: str
    direction: Direction
    expires: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_secrets(raw: str | None) -> tuple[str, ...]:
    """``PATTER_STREAM_SECRET``: comma-separated keys, first signs. Unset/blank -> ``()``.

    Raises :class:`PatterConfigError` for a key shorter than 16 characters (guessable).
    """
    if raw is None or not raw.strip():
        return ()
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(len(key) < 16 for key in keys):
        raise PatterConfigError(
            f"{ENV_SECRET} holds a key shorter than 16 characters. Fix: use long random keys, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`; separate rotated keys with "
            "commas (the first signs, all verify)."
        )
    return keys


class StreamTokens:
    """Mint and verify stream tokens with ``keys`` (first signs); remembers spent tokens.

    ``clock`` returns Unix seconds (tests pass a fake one).
    """

    def __init__(
        self,
        keys: Sequence[str],
        *,
        ttl_s: int = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        usable = [key for key in keys if key]
        if not usable:
            raise PatterConfigError(
                f"stream tokens need a secret. Fix: set {ENV_SECRET} or give the carrier its auth secret."
            )
        self._keys = tuple(hmac.new(key.encode("utf-8"), _PURPOSE, hashlib.sha256).digest() for key in usable)
        self.ttl_s = ttl_s
        self._clock = clock
        self._spent: set[str] = set()
        self._expiries: list[tuple[int, str]] = []  # heap of (expiry, nonce) for pruning

    def __repr__(self) -> str:
        return f"StreamTokens(keys=<{len(self._keys)} hidden>, ttl_s={self.ttl_s})"

    @classmethod
    def from_env(
        cls, carrier_secret: str, environ: Mapping[str, str] | None = None, **kwargs: object
    ) -> StreamTokens:
        """Keys from ``PATTER_STREAM_SECRET``, else ``carrier_secret``, else a per-process random key
        (with a warning: other instances could then not verify this one's tokens)."""
        env = os.environ if environ is None else environ
        keys = parse_secrets(env.get(ENV_SECRET)) or ((carrier_secret,) if carrier_secret else ())
        if not keys:
            log.warning(
                "media stream tokens are signed with a per-process random key (no %s and no carrier "
                "secret): run one instance, or set %s on every instance",
                ENV_SECRET,
                ENV_SECRET,
            )
            keys = (secrets.token_urlsafe(32),)
        return cls(keys, **kwargs)  # type: ignore[arg-type]

    # -- minting -------------------------------------------------------------------------------------
    def mint(self, call_id: str, direction: Direction, *, ttl_s: float | None = None) -> str:
        """A token for one socket of ``call_id`` in ``direction``, valid ``ttl_s`` (default ``ttl_s``)."""
        expires = int(self._clock() + (self.ttl_s if ttl_s is None else ttl_s))
        nonce = _b64(secrets.token_bytes(12))
        return f"{_VERSION}.{expires}.{nonce}.{self._mac(self._keys[0], call_id, direction, expires, nonce)}"

    @staticmethod
    def _mac(key: bytes, call_id: str, direction: str, expires: int, nonce: str) -> str:
        message = f"{_VERSION}\n{direction}\n{expires}\n{nonce}\n{call_id}".encode()
        return _b64(hmac.new(key, message, hashlib.sha256).digest())

    # -- verifying -----------------------------------------------------------------------------------
    def verify(self, token: str | None, call_id: str, direction: Direction) -> StreamClaim:
        """The claim of a token issued for ``call_id`` and ``direction`` and not yet expired; raises
        :class:`StreamTokenError` otherwise. Does not spend it (see :meth:`spend`)."""
        if not token:
            raise StreamTokenError("missing")
        if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
            raise StreamTokenError("malformed")
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit() or not parts[2] or not parts[3]:
            raise StreamTokenError("malformed")
        expires, nonce, mac = int(parts[1]), parts[2], parts[3]
        if not any(
            hmac.compare_digest(mac, self._mac(key, call_id, direction, expires, nonce)) for key in self._keys
        ):
            raise StreamTokenError("forged")
        now = self._clock()
        if expires <= now:
            raise StreamTokenError("expired")
        if expires > now + _MAX_TTL_S:  # signed by us, but not by this code's rules: refuse
            raise StreamTokenError("malformed")
        return StreamClaim(call_id=call_id, direction=direction, expires=expires, nonce=nonce)

    def spend(self, claim: StreamClaim) -> None:
        """Mark ``claim``'s token used (one socket per token); raises ``StreamTokenError("replayed")`` if
        it already was. Spent nonces are forgotten once their token has expired."""
        self._prune()
        if claim.nonce in self._spent:
            raise StreamTokenError("replayed")
        self._spent.add(claim.nonce)
        heapq.heappush(self._expiries, (claim.expires, claim.nonce))

    def _prune(self) -> None:
        now = self._clock()
        while self._expiries and self._expiries[0][0] <= now:
            _, nonce = heapq.heappop(self._expiries)
            self._spent.discard(nonce)

    @property
    def spent_count(self) -> int:
        """Tokens currently remembered as spent (bounded by calls per TTL)."""
        return len(self._spent)

    @staticmethod
    def nonce_of(token: str) -> str:
        """The nonce part of a well-formed token (``""`` otherwise), to bind a token to a record."""
        parts = token.split(".")
        return parts[2] if len(parts) == 4 else ""
