"""One retry policy for the call layer: how many tries, how long between them, which errors retry.

Used by the speaker (a sentence whose TTS failed before any audio), the reply source (an LLM request
refused with 429 before its first token) and the STT link (a dropped recogniser socket). The policy only
decides; the caller sleeps on its own clock, so tests run it on virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass

from getpatter.errors import AuthenticationError, PatterConfigError, PatterError, RateLimitError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` counts every try, the first included (1: never retry)."""

    attempts: int
    #: Wait before retry n (1-based) is ``backoff_s[n - 1]``; the last value repeats.
    backoff_s: tuple[float, ...] = (0.0,)
    #: Errors worth another try ...
    retry_on: tuple[type[Exception], ...] = (PatterError,)
    #: ... except these, which no retry can fix.
    never_on: tuple[type[Exception], ...] = (AuthenticationError, PatterConfigError)
    #: A :class:`RateLimitError` waits its ``Retry-After`` (this long when it names none), at most
    #: ``max_wait_s``; ``None``: rate limits wait the plain backoff like any other error.
    rate_limit_wait_s: float | None = None
    max_wait_s: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or not self.backoff_s or min(self.backoff_s) < 0:
            raise PatterConfigError(
                f"RetryPolicy needs attempts >= 1 and non-negative backoff_s (got {self.attempts}, "
                f"{self.backoff_s})"
            )

    def retryable(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the kind of failure another try may fix."""
        return isinstance(exc, self.retry_on) and not isinstance(exc, self.never_on)

    def should_retry(self, attempt: int, exc: BaseException) -> bool:
        """After try number ``attempt`` (1-based) failed with ``exc``: is there another one?"""
        return attempt < self.attempts and self.retryable(exc)

    def wait_s(self, retry: int, exc: BaseException | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based) after ``exc``."""
        if isinstance(exc, RateLimitError) and self.rate_limit_wait_s is not None:
            return min(exc.retry_after or self.rate_limit_wait_s, self.max_wait_s)
        return self.backoff_s[min(retry, len(self.backoff_s)) - 1]


#: A sentence whose TTS failed before any of its audio was queued is tried once more, at once (after a
#: 429's Retry-After, up to 3 s). Any of our errors qualifies: a mute agent is the worst outcome.
SPEAKER_RETRY = RetryPolicy(attempts=2, never_on=(), rate_limit_wait_s=0.5, max_wait_s=3.0)
#: An LLM request refused with 429 before its first event is tried once more after its Retry-After
#: (capped: a caller is waiting); other LLM errors are not retried here (``FallbackLLM`` does that).
REPLY_RETRY = RetryPolicy(attempts=2, retry_on=(RateLimitError,), rate_limit_wait_s=0.5, max_wait_s=5.0)
#: A dropped STT socket is reopened up to four times with growing pauses; bad keys and bad config
#: are final.
STT_RECONNECT = RetryPolicy(attempts=5, backoff_s=(0.2, 0.5, 1.0, 2.0))
