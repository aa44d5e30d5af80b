"""What a vendor's or carrier's HTTP refusal means for the caller: the one status -> error mapping.

401/403 -> :class:`AuthenticationError`; 429 -> :class:`RateLimitError` with ``retry_after`` seconds from
``retry-after-ms``/``retry-after`` (seconds or an HTTP date); 408 -> :class:`PatterConnectionError` with
code ``TIMEOUT``; 5xx (and any status the caller names as transient) -> :class:`PatterConnectionError`, the
retryable family; any other refusal -> whatever the caller says it is (a plain ``PROVIDER_ERROR``, or a
carrier's own API error with its codes): a request that will never be accepted, not to be retried.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Collection, Mapping

from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI) or ``retry-after``; None when absent or unusable.

    ``headers`` is an ``httpx.Headers`` (case-insensitive) or a mapping with lower-case names.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            pass
        else:
            if math.isfinite(ms) and ms >= 0:
                return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def error_for_status(
    status: int,
    message: str,
    headers: Mapping[str, str],
    *,
    refused: Callable[[str], PatterError] | None = None,
    transient: Collection[int] = (),
) -> PatterError:
    """The exception for a non-2xx answer; ``refused`` builds the one for a permanent refusal."""
    if status in (401, 403):
        return AuthenticationError(message)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after_seconds(headers))
    if status == 408:
        return PatterConnectionError(message, code=ErrorCode.TIMEOUT)
    if status >= 500 or status in transient:
        return PatterConnectionError(message)
    if refused is not None:
        return refused(message)
    return PatterError(message, code=ErrorCode.PROVIDER_ERROR)
