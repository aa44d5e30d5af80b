"""The Twilio carrier configuration: credentials resolved once, at construction.

Re-exported as ``getpatter.carriers.twilio.Carrier`` and ``getpatter.Twilio``. Holds configuration only;
the REST client, signature check and media codec live in sibling modules and read their credentials
from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from getpatter.carriers.base import CarrierConfig
from getpatter.errors import PatterConfigError, PatterTypeError

if TYPE_CHECKING:
    from getpatter.carriers.twilio.carrier import TwilioCarrier


def _from_env(value: object, param: str, env_var: str) -> str:
    """``value`` if given, else the env var; the type check happens before any fallback."""
    if not isinstance(value, str):
        raise PatterTypeError(f"{param} must be a str, got {type(value).__name__}")
    return value.strip() or os.environ.get(env_var, "").strip()


@dataclass(frozen=True)
class Twilio(CarrierConfig):
    """Twilio account credentials; empty arguments fall back to ``TWILIO_ACCOUNT_SID`` and
    ``TWILIO_AUTH_TOKEN``.

    The auth token signs every webhook (HMAC-SHA1), so it is required even for inbound-only use. It never
    appears in ``repr``.
    """

    account_sid: str = ""
    auth_token: str = field(default="", repr=False)
    #: Twilio's REST API root; point it elsewhere only for tests or a regional edge.
    base_url: str = "https://api.twilio.com"

    kind: ClassVar[Literal["twilio"]] = "twilio"

    def build_carrier(self) -> TwilioCarrier:
        """The runtime carrier for one server (REST client, routes); loaded on first use."""
        from getpatter.carriers.twilio.carrier import TwilioCarrier

        return TwilioCarrier(self)

    def __post_init__(self) -> None:
        sid = _from_env(self.account_sid, "account_sid", "TWILIO_ACCOUNT_SID")
        token = _from_env(self.auth_token, "auth_token", "TWILIO_AUTH_TOKEN")
        missing = [
            f"{param} (or env {env})"
            for param, env, got in (
                ("account_sid", "TWILIO_ACCOUNT_SID", sid),
                ("auth_token", "TWILIO_AUTH_TOKEN", token),
            )
            if not got
        ]
        if missing:
            raise PatterConfigError(
                "Twilio carrier requires account_sid and auth_token; missing: "
                + ", ".join(missing)
                + ". Fix: pass Twilio(account_sid='AC...', auth_token='...') or set TWILIO_ACCOUNT_SID "
                "and TWILIO_AUTH_TOKEN (both are on the Twilio Console home page)."
            )
        object.__setattr__(self, "account_sid", sid)
        object.__setattr__(self, "auth_token", token)


__all__ = ["Twilio"]
