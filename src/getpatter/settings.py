"""Process settings read from the environment once, with forgiving parsing.

These knobs are operational (set by whoever deploys the app), so a bad value falls back to the safe
default instead of crashing a server at start; the documented spellings are listed per field.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from getpatter.errors import PatterConfigError, PatterTypeError

RedactMode = Literal["mask", "full", "hash_only"]

DEFAULT_RETENTION_DAYS = 30
DEFAULT_BIND_HOST = "127.0.0.1"

_REDACT_SPELLINGS: dict[str, RedactMode] = {
    "1": "mask",
    "true": "mask",
    "mask": "mask",
    "0": "full",
    "false": "full",
    "full": "full",
    "hash_only": "hash_only",
}
_OFF_SPELLINGS = frozenset({"0", "false", "no", "off"})


def parse_retention_days(raw: str | None) -> int:
    """``PATTER_LOG_RETENTION_DAYS``: unset/garbage -> 30, negative -> 0, ``0`` = keep forever."""
    if raw is None or not raw.strip():
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw.strip())
    except ValueError:
        return DEFAULT_RETENTION_DAYS
    return max(days, 0)


def parse_redact_mode(raw: str | None) -> RedactMode:
    """``PATTER_LOG_REDACT_PHONE`` (API.md C2): default and unknown values mean ``mask``."""
    if raw is None:
        return "mask"
    return _REDACT_SPELLINGS.get(raw.strip().lower(), "mask")


def parse_enabled(raw: str | None) -> bool:
    """Enabled unless the value is ``0``/``false``/``no``/``off`` in any case."""
    return raw is None or raw.strip().lower() not in _OFF_SPELLINGS


@dataclass(frozen=True, slots=True)
class Settings:
    """Env-driven settings. Build with :meth:`from_env`; the defaults equal an empty environment."""

    log_retention_days: int = DEFAULT_RETENTION_DAYS
    redact_phone: RedactMode = "mask"
    dashboard_notify: bool = True
    bind_host: str = DEFAULT_BIND_HOST
    #: ``PATTER_ALLOW_PRIVATE_WEBHOOKS=1`` lets webhook tools call loopback/private addresses (local
    #: development only; off by default as an SSRF guard).
    allow_private_webhooks: bool = False
    #: ``PATTER_MAX_SOCKETS_PER_IP``: concurrent *unauthenticated* media sockets (before their stream token
    #: is verified) one client IP may hold (API.md B.1); 0 = no cap. Verified calls are not capped per IP.
    max_sockets_per_ip: int = 10
    #: ``PATTER_MEDIA_TIMEOUT_S``: end a call whose media socket is silent this long (watchdog).
    media_timeout_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``PATTER_LOG_RETENTION_DAYS``, ``PATTER_LOG_REDACT_PHONE``, ``PATTER_DASHBOARD_NOTIFY`` and
        ``PATTER_BIND_HOST`` from ``env`` (default ``os.environ``)."""
        environ: Mapping[str, str] = os.environ if env is None else env
        return cls(
            log_retention_days=parse_retention_days(environ.get("PATTER_LOG_RETENTION_DAYS")),
            redact_phone=parse_redact_mode(environ.get("PATTER_LOG_REDACT_PHONE")),
            dashboard_notify=parse_enabled(environ.get("PATTER_DASHBOARD_NOTIFY")),
            bind_host=(environ.get("PATTER_BIND_HOST") or "").strip() or DEFAULT_BIND_HOST,
            allow_private_webhooks=(environ.get("PATTER_ALLOW_PRIVATE_WEBHOOKS") or "").strip().lower()
            in ("1", "true", "yes", "on"),
            max_sockets_per_ip=_non_negative_int(environ.get("PATTER_MAX_SOCKETS_PER_IP"), 10),
            media_timeout_s=float(_non_negative_int(environ.get("PATTER_MEDIA_TIMEOUT_S"), 30) or 30),
        )


def redact_phone_number(number: str, mode: RedactMode) -> str:
    """The form of ``number`` written to ``metadata.json`` (API.md C.5); empty stays empty.

    ``mask`` keeps the last 4 characters (``***1234``; 4 or fewer -> ``***``), ``full`` keeps the number,
    ``hash_only`` gives ``sha256:`` + the first 16 hex digits of its SHA-256, enough to join calls from
    the same number without storing it.
    """
    if not isinstance(number, str):
        raise PatterTypeError(f"number must be a str, got {type(number).__name__}")
    if not number:
        return ""
    if mode == "mask":
        return "***" if len(number) <= 4 else "***" + number[-4:]
    if mode == "full":
        return number
    if mode == "hash_only":
        return "sha256:" + hashlib.sha256(number.encode("utf-8")).hexdigest()[:16]
    raise PatterConfigError(f"mode={mode!r} is not a redaction mode. Fix: use 'mask', 'full' or 'hash_only'.")


__all__ = [
    "DEFAULT_BIND_HOST",
    "DEFAULT_RETENTION_DAYS",
    "RedactMode",
    "Settings",
    "parse_enabled",
    "parse_positive",
    "parse_redact_mode",
    "parse_retention_days",
    "redact_phone_number",
]


def parse_positive(raw: str | None, default: float) -> float:
    """A positive number from an environment value; unset, garbage, zero or negative -> ``default``."""
    try:
        value = float(raw) if raw is not None and raw.strip() else default
    except ValueError:
        return default
    return value if value > 0 else default


def _non_negative_int(raw: str | None, default: int) -> int:
    try:
        return max(0, int((raw or "").strip()))
    except ValueError:
        return default
