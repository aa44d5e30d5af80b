"""Anthropic Messages API (streaming SSE, tools, prompt caching) as a getpatter ``LLM``.

getpatter speaks OpenAI-shaped chat history everywhere; this module converts it at the edge:

* ``system``/``developer`` messages become the top-level ``system`` text blocks (no system role
  exists there);
* assistant ``tool_calls`` become ``tool_use`` blocks (arguments parsed into the ``input`` object);
* ``tool`` messages become ``tool_result`` blocks in a **user** turn, placed before any text of that turn;
* consecutive turns of the same role are merged so user/assistant strictly alternate, and a history that
  starts with the agent's greeting gets a short user turn in front (the API wants a user turn first).

With ``prompt_caching`` (default) the system prompt and the last tool carry ``cache_control: ephemeral``:
tools -> system is the stable prefix of every turn of a call, so later turns read it at ~0.1x the price.
Below the model's minimum prefix length Anthropic silently skips caching; nothing breaks.

Stream contract: :class:`TextDelta` per ``text_delta``; one :class:`ToolCallRequest` per ``tool_use`` block
when the block stops (``input_json_delta`` fragments joined; none -> ``"{}"``); then one :class:`Usage` at
``message_stop`` with ``input_tokens`` (uncached part), ``output_tokens`` and the cache read/write counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.llm._http import PooledHTTPClient, redact, status_error, transport_error
from getpatter.llm._sse import aiter_sse
from getpatter.llm.base import LLM as BaseLLM
from getpatter.llm.base import LLMEvent, Message, TextDelta, ToolCallRequest, ToolSchema, Usage

logger = logging.getLogger(__name__)

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
_EPHEMERAL = {"type": "ephemeral"}
#: Sent when the history opens with the agent's greeting: the Messages API wants a user turn first.
CALL_START_TEXT = "(The phone call has started.)"
#: After ``message_stop`` the rest of the body (normally nothing) is read for at most this long.
_DRAIN_TIMEOUT_S = 0.5


class AnthropicLLM(PooledHTTPClient, BaseLLM):
    """Claude through the Messages API, streamed. Configuration only: one instance may serve many calls.

    ``api_key`` falls back to ``ANTHROPIC_API_KEY``. ``base_url`` is the host without ``/v1`` (the SDK
    convention). ``max_tokens`` is required by the API and always sent; ``temperature`` only when set.
    """

    provider_id = "anthropic"
    api_version = ANTHROPIC_VERSION

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "claude-haiku-4-5-20251001",
        *,
        max_tokens: int = 1024,
        prompt_caching: bool = True,
        temperature: float | None = None,
        base_url: str = ANTHROPIC_BASE_URL,
        timeout: float = 30.0,
    ) -> None:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise PatterConfigError(
                "AnthropicLLM needs an API key: pass api_key=... or set the ANTHROPIC_API_KEY environment "
                "variable."
            )
        if not model:
            raise PatterConfigError("AnthropicLLM needs model=... (e.g. 'claude-haiku-4-5-20251001').")
        if max_tokens < 1:
            raise PatterConfigError(f"AnthropicLLM: max_tokens must be >= 1, got {max_tokens!r}.")
        if timeout <= 0:
            raise PatterConfigError(f"AnthropicLLM: timeout must be > 0 seconds, got {timeout!r}.")
        self._api_key = key
        self.model = model
        self.max_tokens = max_tokens
        self.prompt_caching = prompt_caching
        self.temperature = temperature
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"AnthropicLLM(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/messages"

    # ------------------------------------------------------------------------------------------ request
    def build_request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> dict[str, Any]:
        """The Messages API body for one streamed turn (see the module docstring for the conversion)."""
        system, turns = convert_messages(messages)
        body: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens}
        if system:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": text} for text in system]
            if self.prompt_caching:
                blocks[-1]["cache_control"] = dict(_EPHEMERAL)
            body["system"] = blocks
        body["messages"] = turns
        if tools:
            converted = [convert_tool(t) for t in tools]
            if self.prompt_caching:
                converted[-1]["cache_control"] = dict(_EPHEMERAL)
            body["tools"] = converted
        if self.temperature is not None:
            body["temperature"] = self.temperature
        body["stream"] = True
        return body

    def _headers(self) -> dict[str, str]:
        return {
            "x-api-key": self._api_key,
            "anthropic-version": self.api_version,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }

    # ------------------------------------------------------------------------------------------ stream
    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> AsyncGenerator[LLMEvent, None]:
        body = json.dumps(self.build_request(messages, tools), ensure_ascii=False).encode("utf-8")
        secrets = (self._api_key,)
        try:
            async with self._http().stream(
                "POST", self.url, content=body, headers=self._headers()
            ) as response:
                if not response.is_success:
                    raw = await response.aread()
                    raise status_error(
                        self.provider_id, response.status_code, response.headers, raw, secrets=secrets
                    )
                logger.debug(
                    "anthropic stream opened (model=%s, request-id=%s)",
                    self.model,
                    response.headers.get("request-id", "-"),
                )
                folder = _EventFolder()
                byte_iter = response.aiter_bytes()
                try:
                    async with contextlib.aclosing(aiter_sse(byte_iter)) as events:
                        async for sse in events:
                            for event in folder.feed(sse.event, sse.data, secrets):
                                yield event
                            if folder.stopped:
                                break
                    if not folder.stopped:
                        raise PatterConnectionError("anthropic stream ended before message_stop")
                    yield folder.usage()
                    await _drain(byte_iter)  # read to end of body so the connection goes back to the pool
                finally:
                    await byte_iter.aclose()  # type: ignore[attr-defined]  # httpx returns an async generator
        except httpx.HTTPError as exc:
            raise transport_error(self.provider_id, exc, secrets=secrets) from exc


async def _drain(byte_iter: AsyncIterator[bytes]) -> None:
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(_DRAIN_TIMEOUT_S):
            async for _ in byte_iter:
                pass


@dataclass(slots=True)
class _ToolBlock:
    id: str
    name: str
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _EventFolder:
    """Turns Messages API stream events into provider-neutral events; unknown types are ignored."""

    tools: dict[int, _ToolBlock] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def feed(self, name: str, data: str, secrets: Sequence[str]) -> list[LLMEvent]:
        try:
            doc = json.loads(data)
        except ValueError:
            logger.warning("anthropic: skipping a malformed stream event (%d bytes)", len(data))
            return []
        if not isinstance(doc, dict):
            return []
        kind = doc.get("type") or name
        if kind == "error" or name == "error":
            raise _stream_error(doc.get("error"), secrets)
        if kind == "message_start":
            message = doc.get("message") or {}
            self._take_usage(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "content_block_start":
            block = doc.get("content_block") or {}
            if isinstance(block, dict) and block.get("type") == "tool_use":
                self.tools[_index(doc)] = _ToolBlock(str(block.get("id", "")), str(block.get("name", "")))
        elif kind == "content_block_delta":
            delta = doc.get("delta") or {}
            if not isinstance(delta, dict):
                return []
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str) and delta["text"]:
                return [TextDelta(delta["text"])]
            pending = self.tools.get(_index(doc))
            if delta.get("type") == "input_json_delta" and pending is not None:
                fragment = delta.get("partial_json")
                if isinstance(fragment, str):
                    pending.parts.append(fragment)
        elif kind == "content_block_stop":
            pending = self.tools.pop(_index(doc), None)
            if pending is not None:
                return [ToolCallRequest(pending.id, pending.name, "".join(pending.parts).strip() or "{}")]
        elif kind == "message_delta":
            self._take_usage(doc.get("usage"))
        elif kind == "message_stop":
            self.stopped = True
        return []

    def _take_usage(self, raw: Any) -> None:
        # message_delta counts are cumulative and may repeat message_start's: keep the largest seen.
        if not isinstance(raw, dict):
            return
        for key, value in raw.items():
            if isinstance(value, int) and value >= 0:
                self.counts[key] = max(value, self.counts.get(key, 0))

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.counts.get("input_tokens", 0),
            output_tokens=self.counts.get("output_tokens", 0),
            cache_read_tokens=self.counts.get("cache_read_input_tokens", 0),
            cache_write_tokens=self.counts.get("cache_creation_input_tokens", 0),
        )


def _index(doc: Mapping[str, Any]) -> int:
    index = doc.get("index")
    return index if isinstance(index, int) else -1


def _stream_error(error: Any, secrets: Sequence[str]) -> PatterError:
    """An in-stream ``error`` event: overload and server errors are retryable, like their HTTP twins."""
    err = error if isinstance(error, dict) else {}
    kind = str(err.get("type", "api_error"))
    message = f"anthropic stream error ({kind}): " + redact(str(err.get("message", "")), secrets)
    if kind == "rate_limit_error":
        return RateLimitError(message)
    if kind in ("overloaded_error", "api_error", "timeout_error"):
        return PatterConnectionError(message)
    if kind in ("authentication_error", "permission_error"):
        return AuthenticationError(message)
    return PatterError(message, code=ErrorCode.PROVIDER_ERROR)


# ---------------------------------------------------------------------------------------------- conversion
def convert_tool(tool: ToolSchema) -> dict[str, Any]:
    """``{"name","description","parameters"}`` (or OpenAI's ``{"type":"function",...}``) -> Anthropic tool."""
    spec = tool.get("function") if tool.get("type") == "function" else tool
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise PatterConfigError(f"tool schema needs a non-empty 'name', got keys {sorted(tool)}")
    out: dict[str, Any] = {"name": spec["name"]}
    if spec.get("description"):
        out["description"] = spec["description"]
    out["input_schema"] = spec.get("parameters") or {"type": "object", "properties": {}}
    return out


def convert_messages(messages: Sequence[Message]) -> tuple[list[str], list[dict[str, Any]]]:
    """OpenAI chat history -> (system texts, strictly alternating Messages API turns)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = _text(message.get("content"))
            if text:
                system.append(text)
            continue
        if role == "assistant":
            blocks = _assistant_blocks(message)
            turn_role = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message)]
            turn_role = "user"
        elif role == "user":
            blocks = _user_blocks(message.get("content"))
            turn_role = "user"
        else:
            raise PatterConfigError(f"AnthropicLLM: unsupported message role {role!r}")
        if not blocks:
            continue  # Anthropic rejects empty turns (e.g. an assistant message with content None)
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # tool_result blocks must open their user turn
            content = turn["content"]
            turn["content"] = [b for b in content if b["type"] == "tool_result"] + [
                b for b in content if b["type"] != "tool_result"
            ]
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": CALL_START_TEXT}]})
    return system, turns


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and part.get("text"):
            blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
                media, data = url[5:].split(";base64,", 1)
                blocks.append(
                    {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
                )
            elif isinstance(url, str) and url:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
    return blocks


def _assistant_blocks(message: Message) -> list[dict[str, Any]]:
    text = _text(message.get("content"))
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text.strip() else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        raw = function.get("arguments") or "{}"
        try:
            arguments = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            logger.warning(
                "anthropic: tool call %s had non-object arguments; sending {}", function.get("name")
            )
            arguments = {}
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}
        )
    return blocks


def _tool_result(message: Message) -> dict[str, Any]:
    content = message.get("content")
    text = content if isinstance(content, str) else _text(content)
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": text}


LLM = AnthropicLLM

__all__ = [
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_VERSION",
    "LLM",
    "AnthropicLLM",
    "convert_messages",
    "convert_tool",
]
