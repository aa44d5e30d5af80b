"""The Telnyx carrier configuration: credentials and media codec, resolved once at construction.

Re-exported as ``getpatter.carriers.telnyx.Carrier``. Configuration only; the Call Control client,
Ed25519 webhook check and media codec read their settings from here.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from getpatter.carriers.base import CarrierConfig
from getpatter.errors import PatterConfigError, PatterTypeError

if TYPE_CHECKING:
    from getpatter.carriers.telnyx.carrier import TelnyxCarrier

TelnyxCodec = Literal["L16", "PCMU"]

#: Stream codec -> the sample rate Telnyx uses for it on the media WebSocket (telnyx.md 5.3).
CODEC_SAMPLE_RATES: dict[str, int] = {"L16": 16000, "PCMU": 8000}


def _str_or_env(value: object, param: str, env_var: str | None = None) -> str:
    if not isinstance(value, str):
        raise PatterTypeError(f"{param} must be a str, got {type(value).__name__}")
    text = value.strip()
    if not text and env_var is not None:
        text = os.environ.get(env_var, "").strip()
    return text


@dataclass(frozen=True)
class Telnyx(CarrierConfig):
    """Telnyx Call Control credentials.

    ``api_key`` and ``connection_id`` are required (env ``TELNYX_API_KEY``, ``TELNYX_CONNECTION_ID``).
    ``public_key`` (env ``TELNYX_PUBLIC_KEY``) is the account's base64 Ed25519 key: webhook signatures
    are verified with it, and without it the server refuses to start unless
    ``allow_unsigned_webhooks=True`` (development only: anyone who can reach the webhook can then make the
    server answer, stream and hang up calls; a warning is logged at every start).
    ``strict_signatures=True`` insists on the key. ``stream_codec`` is ``"L16"`` (16 kHz, no
    transcoding, the default) or ``"PCMU"`` (8 kHz mu-law). The API key never appears in ``repr``.
    """

    api_key: str = field(default="", repr=False)
    connection_id: str = ""
    public_key: str = ""
    stream_codec: str = "L16"
    strict_signatures: bool = False
    #: Accept webhooks without a signature check when no ``public_key`` is set (development only).
    allow_unsigned_webhooks: bool = False
    #: Telnyx's REST API root ("" = the real one, or env ``TELNYX_BASE_URL``); for tests and proxies.
    base_url: str = ""

    kind: ClassVar[Literal["telnyx"]] = "telnyx"

    def build_carrier(self) -> TelnyxCarrier:
        """The runtime carrier for one server (REST client, routes); loaded on first use."""
        from getpatter.carriers.telnyx.carrier import TelnyxCarrier

        return TelnyxCarrier(self)

    def __post_init__(self) -> None:
        api_key = _str_or_env(self.api_key, "api_key", "TELNYX_API_KEY")
        connection_id = _str_or_env(self.connection_id, "connection_id", "TELNYX_CONNECTION_ID")
        public_key = _str_or_env(self.public_key, "public_key", "TELNYX_PUBLIC_KEY")
        codec = _str_or_env(self.stream_codec, "stream_codec").upper()
        if not isinstance(self.strict_signatures, bool):
            raise PatterTypeError(
                f"strict_signatures must be a bool, got {type(self.strict_signatures).__name__}"
            )
        if not isinstance(self.allow_unsigned_webhooks, bool):
            raise PatterTypeError(
                f"allow_unsigned_webhooks must be a bool, got {type(self.allow_unsigned_webhooks).__name__}"
            )

        missing = [
            f"{param} (or env {env})"
            for param, env, got in (
                ("api_key", "TELNYX_API_KEY", api_key),
                ("connection_id", "TELNYX_CONNECTION_ID", connection_id),
            )
            if not got
        ]
        if missing:
            raise PatterConfigError(
                "Telnyx carrier requires api_key and connection_id; missing: "
                + ", ".join(missing)
                + ". Fix: pass Telnyx(api_key='KEY...', connection_id='...') or set TELNYX_API_KEY and "
                "TELNYX_CONNECTION_ID (the connection id is your Call Control application's id)."
            )
        if codec not in CODEC_SAMPLE_RATES:
            raise PatterConfigError(
                f"stream_codec={self.stream_codec!r} is not supported. Fix: pass stream_codec='L16' "
                "(16 kHz, recommended) or stream_codec='PCMU' (8 kHz mu-law)."
            )
        if public_key:
            _check_public_key(public_key)
        elif self.strict_signatures:
            raise PatterConfigError(
                "strict_signatures=True rejects every webhook unless it can be verified, but no public_key "
                "is set. Fix: pass public_key='<base64 Ed25519 key from the Telnyx portal>' or set "
                "TELNYX_PUBLIC_KEY, or drop strict_signatures."
            )

        object.__setattr__(self, "api_key", api_key)
        object.__setattr__(self, "connection_id", connection_id)
        object.__setattr__(self, "public_key", public_key)
        object.__setattr__(self, "stream_codec", codec)

    @property
    def sample_rate(self) -> int:
        """Sample rate of the media stream implied by ``stream_codec``."""
        return CODEC_SAMPLE_RATES[self.stream_codec]


def _check_public_key(key: str) -> None:
    """Fail at construction, not on the first webhook, when the key cannot be an Ed25519 key."""
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise PatterConfigError(
            "public_key (or env TELNYX_PUBLIC_KEY) must be the base64 text of a 32-byte Ed25519 public key. "
            "Fix: copy the key from Telnyx Mission Control "
            "(Account Settings > Keys & Credentials > Public Key)."
        )


__all__ = ["CODEC_SAMPLE_RATES", "Telnyx", "TelnyxCodec"]
