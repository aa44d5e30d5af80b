"""Cerebras chat models through Cerebras' OpenAI-compatible Chat Completions endpoint.

Cerebras speaks the OpenAI wire protocol at ``https://api.cerebras.ai/v1`` (Bearer key), with three
differences this module owns:

* **Unsupported fields.** ``frequency_penalty``, ``presence_penalty`` and ``parallel_tool_calls`` are
  reported to be answered with HTTP 400, so the constructor does not take them at all.
* **Request compression.** Cerebras documents (``capabilities/payload-optimization``) that chat requests may
  be gzip-compressed JSON (``Content-Encoding: gzip``). A phone call resends the whole history every turn,
  so with ``gzip_compression`` (default) bodies of at least ``_GZIP_MIN_BYTES`` are gzipped; tiny bodies
  are sent plain because compressing them saves nothing. The documented msgpack encoding is *not*
  offered: it needs a third-party codec getpatter does not depend on, and gzip gives most of the gain.
* **Rate limits.** Cerebras reports ``x-ratelimit-remaining-<bucket>`` / ``x-ratelimit-reset-<bucket>``
  (seconds) on every answer rather than ``retry-after``. A 429 therefore carries ``retry_after`` computed
  from the reset header of the exhausted bucket, and the stream is retried **once** (``max_retries``) after
  that wait when it is at most ``max_retry_wait_s`` — a caller on the phone should not wait for a daily
  quota. 5xx and dropped connections are retried once after a short backoff. Retries only happen before
  the first event was yielded; terminal 4xx errors are raised at once as ``PatterError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import httpx

from getpatter.errors import ErrorCode, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.llm._http import status_error
from getpatter.llm.base import LLMEvent, Message, ToolSchema
from getpatter.llm.openai import OpenAICompatibleLLM

logger = logging.getLogger(__name__)

CEREBRAS_BASE_URL = "https://api.cerebras.ai/v1"
#: Bodies smaller than this are sent uncompressed (gzip overhead would outweigh the saving).
_GZIP_MIN_BYTES = 1024
#: Wait before retrying a 5xx / dropped connection (doubles per further attempt).
_BACKOFF_S = 0.25
#: Indirection so tests can observe waits without sleeping.
_sleep = asyncio.sleep


def rate_limit_reset_s(headers: Mapping[str, str]) -> float | None:
    """Seconds until Cerebras lets the next request through, from its ``x-ratelimit-*`` headers.

    The longest reset among the buckets whose ``remaining`` is 0; when none is reported exhausted, the
    per-minute token bucket's reset (the usual cause of a 429). ``None`` when no header says.
    """
    exhausted: list[float] = []
    for name, value in headers.items():
        key = name.lower()
        if key.startswith("x-ratelimit-remaining-") and _number(value) == 0:
            reset = _number(headers.get("x-ratelimit-reset-" + key.removeprefix("x-ratelimit-remaining-")))
            if reset is not None:
                exhausted.append(reset)
    if exhausted:
        return max(exhausted)
    return _number(headers.get("x-ratelimit-reset-tokens-minute"))


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 and number != float("inf") else None


class CerebrasLLM(OpenAICompatibleLLM):
    """Cerebras, streamed. ``api_key`` falls back to ``CEREBRAS_API_KEY``. See the module docstring."""

    provider_id = "cerebras"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "gpt-oss-120b",
        *,
        base_url: str = CEREBRAS_BASE_URL,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        response_format: Mapping[str, Any] | None = None,
        gzip_compression: bool = True,
        max_retries: int = 1,
        max_retry_wait_s: float = 5.0,
        timeout: float = 30.0,
        user_agent: str | None = None,
    ) -> None:
        if max_retries < 0:
            raise PatterConfigError(f"CerebrasLLM: max_retries must be >= 0, got {max_retries!r}.")
        super().__init__(
            base_url,
            api_key,
            model,
            api_key_env="CEREBRAS_API_KEY",
            provider_id="cerebras",
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            seed=seed,
            stop=stop,
            tool_choice=tool_choice,
            response_format=response_format,
            timeout=timeout,
            user_agent=user_agent,
        )
        self.gzip_compression = gzip_compression
        self.max_retries = max_retries
        self.max_retry_wait_s = max_retry_wait_s

    def _http(self) -> httpx.AsyncClient:
        client = super()._http()
        hooks = client.event_hooks
        if self._compress not in hooks["request"]:
            hooks["request"].append(self._compress)
            hooks["response"].append(self._rate_limited)
        return client

    async def _compress(self, request: httpx.Request) -> None:
        """Request hook: gzip a large JSON body (Cerebras decodes ``Content-Encoding: gzip``)."""
        if not self.gzip_compression or "content-encoding" in request.headers:
            return
        raw = request.content
        if len(raw) < _GZIP_MIN_BYTES:
            return
        packed = gzip.compress(raw, compresslevel=5, mtime=0)
        request.headers["Content-Encoding"] = "gzip"
        request.headers["Content-Length"] = str(len(packed))
        request.stream = httpx.ByteStream(packed)
        request._content = packed  # keep Request.content consistent with what is sent

    async def _rate_limited(self, response: httpx.Response) -> None:
        """Response hook: turn a 429 into RateLimitError with the wait Cerebras' reset headers announce."""
        if response.status_code != 429:
            return
        raw = await response.aread()
        error = status_error(self.provider_id, 429, response.headers, raw, secrets=(self._api_key,))
        if isinstance(error, RateLimitError) and error.retry_after is None:
            error.retry_after = rate_limit_reset_s(response.headers)
        raise error

    def _retry_delay(self, exc: PatterConnectionError, attempt: int) -> float | None:
        if attempt >= self.max_retries or exc.code == ErrorCode.TIMEOUT:
            return None
        if isinstance(exc, RateLimitError):
            wait = float(exc.retry_after) if exc.retry_after is not None else _BACKOFF_S * 2.0**attempt
            return wait if wait <= self.max_retry_wait_s else None
        return _BACKOFF_S * 2.0**attempt

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> AsyncGenerator[LLMEvent, None]:
        attempt = 0
        while True:
            started = False
            try:
                async with contextlib.aclosing(super().stream(messages, tools)) as events:
                    async for event in events:
                        started = True
                        yield event
                return
            except PatterConnectionError as exc:
                delay = None if started else self._retry_delay(exc, attempt)
                if delay is None:
                    raise
                attempt += 1
                logger.info("cerebras: retrying in %.2fs after: %s", delay, exc)
                await _sleep(delay)


LLM = CerebrasLLM

__all__ = ["CEREBRAS_BASE_URL", "LLM", "CerebrasLLM", "rate_limit_reset_s"]
