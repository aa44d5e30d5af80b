"""The exception hierarchy every part of getpatter raises (API.md A.16)."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    CONFIG = "CONFIG"
    CONNECTION = "CONNECTION"
    AUTH = "AUTH"
    TIMEOUT = "TIMEOUT"
    RATE_LIMIT = "RATE_LIMIT"
    WEBHOOK_VERIFICATION = "WEBHOOK_VERIFICATION"
    INPUT_VALIDATION = "INPUT_VALIDATION"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    PROVISION = "PROVISION"
    CAPACITY = "CAPACITY"
    INTERNAL = "INTERNAL"


class PatterError(Exception):
    """Base of every error getpatter raises on purpose; ``code`` says which kind."""

    default_code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code if code is not None else self.default_code


class PatterConfigError(PatterError, ValueError):
    """A configuration mistake. The message names the parameter (or env var) and the fix.

    A ``ValueError``, so code written for the existing Patter SDK that catches ``ValueError`` for bad
    values keeps working.
    """

    default_code = ErrorCode.CONFIG


class PatterTypeError(PatterConfigError, TypeError):
    """A configuration value of the wrong Python type (a list where a str belongs, a function where a
    ``Tool`` belongs, ...).

    Both a ``TypeError`` (what Patter raised, and what Python raises for wrong types) and a
    :class:`PatterConfigError`, so ``except TypeError``, ``except ValueError`` and
    ``except PatterConfigError`` all catch it.
    """


class PatterUnsupportedError(PatterConfigError, NotImplementedError):
    """A feature of the existing Patter SDK that getpatter deliberately does not have (Patter Cloud).

    A ``NotImplementedError`` like Patter's own refusal, and a :class:`PatterConfigError`; the message
    names what to use instead.
    """


class PatterConnectionError(PatterError):
    """A vendor or carrier could not be reached, or dropped the connection."""

    default_code = ErrorCode.CONNECTION


class RateLimitError(PatterConnectionError):
    """The vendor answered 429. ``retry_after`` is in seconds when the vendor said."""

    default_code = ErrorCode.RATE_LIMIT

    def __init__(self, message: str, *, retry_after: float | None = None, code: ErrorCode | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after


class AuthenticationError(PatterError):
    """The vendor refused the credentials (401/403)."""

    default_code = ErrorCode.AUTH


class AtCapacityError(PatterError):
    """``phone.call()`` refused to dial: the server is at its limit (``max_concurrent_calls``, the fleet's
    ``fleet_max_concurrent_calls``, or an event loop too far behind to take another call). Nothing was
    dialled; ``reason`` is ``capacity``, ``fleet_capacity`` or ``loop_lag``. Retry later or elsewhere."""

    default_code = ErrorCode.CAPACITY

    def __init__(self, message: str, *, reason: str, code: ErrorCode | None = None) -> None:
        super().__init__(message, code=code)
        self.reason = reason


class ProvisionError(PatterError):
    """A carrier resource (number, application) could not be configured."""

    default_code = ErrorCode.PROVISION


__all__ = [
    "AtCapacityError",
    "AuthenticationError",
    "ErrorCode",
    "PatterConfigError",
    "PatterConnectionError",
    "PatterError",
    "PatterTypeError",
    "PatterUnsupportedError",
    "ProvisionError",
    "RateLimitError",
]
