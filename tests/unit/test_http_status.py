"""The one HTTP status -> getpatter error mapping shared by LLM, TTS, STT and carrier clients."""

from __future__ import annotations

import httpx
import pytest

from getpatter._http_status import error_for_status, retry_after_seconds
from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)


class CarrierRefusal(PatterError):
    pass


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (401, AuthenticationError, None),
        (403, AuthenticationError, None),
        (408, PatterConnectionError, ErrorCode.TIMEOUT),
        (500, PatterConnectionError, None),
        (503, PatterConnectionError, None),
        (409, PatterConnectionError, None),  # named transient below
        (400, CarrierRefusal, None),
        (404, CarrierRefusal, None),
    ],
)
def test_statuses_map_to_the_error_a_caller_can_act_on(
    status: int, kind: type, code: ErrorCode | None
) -> None:
    error = error_for_status(status, f"HTTP {status}", {}, refused=CarrierRefusal, transient=(409,))
    assert type(error) is kind and str(error).startswith(f"HTTP {status}")
    if code is not None:
        assert error.code == code


def test_rate_limits_carry_the_wait_and_plain_refusals_default_to_provider_error() -> None:
    limited = error_for_status(429, "slow down", httpx.Headers({"Retry-After": "7"}))
    assert isinstance(limited, RateLimitError) and limited.retry_after == 7.0
    refused = error_for_status(422, "bad field", {})
    assert type(refused) is PatterError and refused.code == ErrorCode.PROVIDER_ERROR
    assert retry_after_seconds(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert retry_after_seconds({"retry-after": "-3"}) is None
