"""FallbackLLM: several LLM providers behind one, tried in order, so a vendor outage does not end the call.

Contract of :meth:`FallbackLLM.stream`:

* Providers are tried in the order given. A provider that fails with a *retryable* error —
  :class:`PatterConnectionError` (network failures, timeouts, 5xx, dropped streams), its subclass
  :class:`RateLimitError`, or a bare ``OSError``/``TimeoutError`` from a custom provider — **before it
  yielded its first event** is retried up to ``max_retry_per_provider`` more times (a rate-limited provider
  is not retried: hammering it only makes the caller wait), then the next provider takes over. Nothing
  has been spoken yet, so switching is invisible to the caller.
* Once a provider has yielded an event, its answer is being spoken; a later failure cannot be replayed by
  another provider without repeating words, so it is raised as :class:`PartialStreamError`.
* Any other error (bad credentials, a 4xx the vendor will never accept, a bug) is raised at once: another
  vendor would not fix the request, and hiding it would hide a misconfiguration.
* When every provider failed, :class:`AllProvidersFailedError` carries each provider's error.

A provider that exhausted its attempts is remembered as down for ``recovery_interval_s`` (measured with the
injectable ``clock``): later turns try the healthy providers first and the down ones only as a last resort.
``last_provider`` is the provider whose answer the latest stream delivered; ``provider_id`` and ``model``
follow the active provider (the last one that answered, else the first healthy one), so usage from a
stream is priced with the vendor that produced it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence

from getpatter.errors import PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.llm.base import LLM as BaseLLM
from getpatter.llm.base import LLMEvent, Message, ToolSchema

logger = logging.getLogger(__name__)


class PartialStreamError(PatterConnectionError):
    """A provider failed after it had already yielded part of its answer; no other provider was tried."""

    def __init__(self, message: str, *, provider_id: str, model: str) -> None:
        super().__init__(message)
        self.provider_id = provider_id
        self.model = model


class AllProvidersFailedError(PatterConnectionError):
    """Every provider failed before answering. ``errors`` holds ``(provider_id, exception)`` in order."""

    def __init__(self, message: str, errors: Sequence[tuple[str, BaseException]]) -> None:
        super().__init__(message)
        self.errors = list(errors)


async def _aclose(events: AsyncIterator[LLMEvent]) -> None:
    """Close a provider's stream now (not at GC), so its HTTP response is released on failover or cancel."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, PatterConnectionError | OSError | TimeoutError)


class FallbackLLM(BaseLLM):
    """Ordered failover across LLM providers (see the module docstring for the exact contract)."""

    def __init__(
        self,
        providers: Sequence[BaseLLM],
        *,
        max_retry_per_provider: int = 1,
        recovery_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        providers = list(providers)
        if not providers:
            raise PatterConfigError("FallbackLLM needs providers=[...] with at least one LLM.")
        for provider in providers:
            if not isinstance(provider, BaseLLM):
                raise PatterConfigError(
                    f"FallbackLLM: providers must be LLM instances, got {type(provider).__name__}."
                )
        if max_retry_per_provider < 0:
            raise PatterConfigError(
                f"FallbackLLM: max_retry_per_provider must be >= 0, got {max_retry_per_provider!r}."
            )
        if recovery_interval_s < 0:
            raise PatterConfigError(
                f"FallbackLLM: recovery_interval_s must be >= 0, got {recovery_interval_s!r}."
            )
        self.providers: tuple[BaseLLM, ...] = tuple(providers)
        self.max_retry_per_provider = max_retry_per_provider
        self.recovery_interval_s = recovery_interval_s
        self._clock = clock
        self._down_until: dict[int, float] = {}
        self.last_provider: BaseLLM | None = None
        self._activate(self.providers[0])

    def __repr__(self) -> str:
        names = ", ".join(f"{p.provider_id}:{p.model}" for p in self.providers)
        return f"FallbackLLM([{names}], active={self.provider_id}:{self.model})"

    def _activate(self, provider: BaseLLM) -> None:
        self.provider_id = provider.provider_id
        self.model = provider.model

    def is_down(self, provider: BaseLLM) -> bool:
        """Whether ``provider`` failed within the last ``recovery_interval_s`` seconds."""
        until = self._down_until.get(id(provider))
        return until is not None and self._clock() < until

    def _order(self) -> list[BaseLLM]:
        healthy = [p for p in self.providers if not self.is_down(p)]
        return healthy + [p for p in self.providers if p not in healthy]

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> AsyncGenerator[LLMEvent, None]:
        errors: list[tuple[str, BaseException]] = []
        for provider in self._order():
            for attempt in range(1 + self.max_retry_per_provider):
                started = False
                try:
                    events = provider.stream(messages, tools)
                    try:
                        async for event in events:
                            if not started:
                                started = True
                                self._answered_by(provider)
                            yield event
                    finally:
                        await _aclose(events)
                    if not started:
                        self._answered_by(provider)  # an empty answer is still an answer
                    return
                except Exception as exc:
                    if started:
                        raise PartialStreamError(
                            f"{provider.provider_id} failed mid-answer: {exc}",
                            provider_id=provider.provider_id,
                            model=provider.model,
                        ) from exc
                    if not _retryable(exc):
                        raise
                    errors.append((provider.provider_id, exc))
                    logger.warning(
                        "fallback: %s (%s) attempt %d failed: %s",
                        provider.provider_id,
                        provider.model,
                        attempt + 1,
                        exc,
                    )
                    if isinstance(exc, RateLimitError):
                        break
            self._down_until[id(provider)] = self._clock() + self.recovery_interval_s
        healthy = next((p for p in self.providers if not self.is_down(p)), self.providers[0])
        self._activate(healthy)
        summary = "; ".join(f"{pid}: {type(exc).__name__}: {exc}" for pid, exc in errors)
        raise AllProvidersFailedError(f"all {len(self.providers)} LLM providers failed ({summary})", errors)

    def _answered_by(self, provider: BaseLLM) -> None:
        self._down_until.pop(id(provider), None)
        self.last_provider = provider
        self._activate(provider)

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()


#: The name API.md (A.1 row 61) uses for the same class.
FallbackLLMProvider = FallbackLLM

__all__ = ["AllProvidersFailedError", "FallbackLLM", "FallbackLLMProvider", "PartialStreamError"]
