"""OpenAI Chat Completions (streaming SSE) as a getpatter :class:`~getpatter.llm.base.LLM`.

One implementation serves OpenAI and every server that speaks the same wire protocol (Groq, Cerebras,
vLLM, Ollama, LM Studio, ...) through :class:`OpenAICompatibleLLM`.

Stream contract (``stream(messages, tools)``): :class:`TextDelta` for each content fragment as it arrives;
then each complete :class:`ToolCallRequest` (argument fragments joined per ``index``; empty arguments become
``"{}"``) once the choice reports ``finish_reason``; then one :class:`Usage` if the server sent the final
usage chunk. ``Usage.input_tokens`` excludes cached prompt tokens, which are reported as
``cache_read_tokens`` (the same split Anthropic uses), so cost = input + cache_read + output at their rates.

Latency: a single ``httpx.AsyncClient`` per provider instance keeps TLS connections alive across turns and
calls; after ``[DONE]`` the body is drained (briefly) so the connection returns to the pool.
Cancelling the consuming task closes the HTTP stream at once. A consumer that ``break``s out of the loop
early should wrap the iterator in ``contextlib.aclosing`` so the stream closes right away, not at GC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import httpx

from getpatter.errors import PatterConfigError, PatterConnectionError
from getpatter.llm._http import PooledHTTPClient, status_error, transport_error, vendor_message
from getpatter.llm._sse import aiter_sse
from getpatter.llm.base import LLM as BaseLLM
from getpatter.llm.base import LLMEvent, Message, TextDelta, ToolCallRequest, ToolSchema, Usage

logger = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
#: Idle pooled connections are kept this long: turns of a phone call are often > 5 s (httpx's default) apart.
#: After ``[DONE]`` we read to end of body so the connection can be reused, but never wait longer than this.
_DRAIN_TIMEOUT_S = 0.5


@dataclass(slots=True)
class _PendingCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _ChunkAccumulator:
    """Folds chat.completion.chunk objects into provider-neutral events (choice 0 only; ``n`` is 1)."""

    provider: str
    calls: list[_PendingCall] = field(default_factory=list)
    by_index: dict[int, _PendingCall] = field(default_factory=dict)
    finished: bool = False
    usage: Usage | None = None

    def feed(self, chunk: Mapping[str, Any]) -> list[LLMEvent]:
        error = chunk.get("error")
        if error is not None:
            detail = vendor_message(json.dumps({"error": error}).encode("utf-8"))
            raise PatterConnectionError(f"{self.provider} stream error: {detail}")
        out: list[LLMEvent] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            for key in ("content", "refusal"):  # a refusal is spoken like any other answer
                text = delta.get(key)
                if isinstance(text, str) and text:
                    out.append(TextDelta(text))
            for position, fragment in enumerate(delta.get("tool_calls") or ()):
                if isinstance(fragment, dict):
                    self._add_fragment(position, fragment)
            if choice.get("finish_reason"):
                self.finished = True
                out.extend(self.flush_calls())
        usage = chunk.get("usage")
        if not isinstance(usage, dict):
            x_groq = chunk.get("x_groq")
            usage = x_groq.get("usage") if isinstance(x_groq, dict) else None
        if isinstance(usage, dict):
            self.usage = _usage_from(usage)
        return out

    def _add_fragment(self, position: int, fragment: Mapping[str, Any]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):
            index = position  # some compatible servers send whole calls without an index
        call_id = fragment.get("id")
        pending = self.by_index.get(index)
        if pending is None or (isinstance(call_id, str) and call_id and pending.id and call_id != pending.id):
            pending = _PendingCall()  # a new id on a used index is a new call (servers that reuse index 0)
            self.by_index[index] = pending
            self.calls.append(pending)
        if isinstance(call_id, str) and call_id and not pending.id:
            pending.id = call_id
        function = fragment.get("function") or {}
        name = function.get("name")
        if isinstance(name, str):
            pending.name += name
        args = function.get("arguments")
        if isinstance(args, str):
            pending.arguments.append(args)
        elif isinstance(args, dict):  # a few servers send a parsed object
            pending.arguments.append(json.dumps(args))

    def flush_calls(self) -> list[LLMEvent]:
        out: list[LLMEvent] = []
        for pending in self.calls:
            if not pending.name:
                logger.warning("%s: dropping a streamed tool call without a name", self.provider)
                continue
            arguments = "".join(pending.arguments).strip() or "{}"
            out.append(
                ToolCallRequest(pending.id or f"call_{uuid.uuid4().hex[:24]}", pending.name, arguments)
            )
        self.calls.clear()
        self.by_index.clear()
        return out


def _usage_from(raw: Mapping[str, Any]) -> Usage:
    def _int(value: Any) -> int:
        return value if isinstance(value, int) and value > 0 else 0

    details = raw.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = _int(raw.get("prompt_tokens"))
    return Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=_int(raw.get("completion_tokens")),
        cache_read_tokens=min(cached, prompt) if prompt else cached,
    )


class ChatOptions(TypedDict, total=False):
    """The optional keyword arguments :class:`OpenAILLM` and its compatible subclasses share."""

    temperature: float | None
    max_tokens: int | None
    top_p: float | None
    seed: int | None
    stop: str | Sequence[str] | None
    tool_choice: str | Mapping[str, Any] | None
    parallel_tool_calls: bool | None
    response_format: Mapping[str, Any] | None
    frequency_penalty: float | None
    presence_penalty: float | None
    timeout: float
    user_agent: str | None


class OpenAILLM(PooledHTTPClient, BaseLLM):
    """OpenAI Chat Completions, streamed. Configuration only: one instance may serve many calls at once.

    ``api_key`` falls back to ``OPENAI_API_KEY``. Only the sampling options you set are sent;
    ``max_tokens`` goes on the wire as ``max_completion_tokens``. ``timeout`` bounds connecting and each
    read (a stalled stream fails after ``timeout`` seconds of silence, not after the whole answer).
    """

    provider_id = "openai"
    _max_tokens_param = "max_completion_tokens"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "gpt-4o-mini",
        *,
        base_url: str = OPENAI_BASE_URL,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: str | Sequence[str] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        response_format: Mapping[str, Any] | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        timeout: float = 30.0,
        user_agent: str | None = None,
    ) -> None:
        name = type(self).__name__
        if not model:
            raise PatterConfigError(f"{name} needs model=... (the vendor's model id).")
        if not base_url:
            raise PatterConfigError(f"{name} needs base_url=... (e.g. http://127.0.0.1:8000/v1).")
        if timeout <= 0:
            raise PatterConfigError(f"{name}: timeout must be > 0 seconds, got {timeout!r}.")
        self._api_key = self._resolve_api_key(api_key)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._user_agent = user_agent
        options: dict[str, Any] = {
            "temperature": temperature,
            "max_tokens": max_tokens,
            "top_p": top_p,
            "seed": seed,
            "stop": stop if stop is None or isinstance(stop, str) else list(stop),
            "tool_choice": tool_choice
            if tool_choice is None or isinstance(tool_choice, str)
            else dict(tool_choice),
            "parallel_tool_calls": parallel_tool_calls,
            "response_format": None if response_format is None else dict(response_format),
            "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty,
        }
        self._options = {k: v for k, v in options.items() if v is not None}

    def _resolve_api_key(self, api_key: str | None) -> str | None:
        """The key to send (``None``: no ``Authorization`` header); raise when a required key is missing."""
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise PatterConfigError(
                "OpenAILLM needs an API key: pass api_key=... or set the OPENAI_API_KEY environment variable."
            )
        return key

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(provider_id={self.provider_id!r}, model={self.model!r}, base_url={self.base_url!r})"

    @property
    def url(self) -> str:
        """The Chat Completions endpoint this instance posts to."""
        return f"{self.base_url}/chat/completions"

    def build_request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> dict[str, Any]:
        """The JSON body for one streamed completion; subclasses may override to drop unsupported fields."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if tools:
            body["tools"] = [_wrap_tool(t) for t in tools]
        for name, value in self._options.items():
            if name in ("tool_choice", "parallel_tool_calls") and not tools:
                continue  # OpenAI answers 400 when these come without tools
            body[self._max_tokens_param if name == "max_tokens" else name] = value
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self._user_agent:
            headers["User-Agent"] = self._user_agent
        return headers

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> AsyncGenerator[LLMEvent, None]:
        body = json.dumps(self.build_request(messages, tools), ensure_ascii=False).encode("utf-8")
        secrets = (self._api_key,)
        client = self._http()
        try:
            async with client.stream("POST", self.url, content=body, headers=self._headers()) as response:
                if not response.is_success:
                    raw = await response.aread()
                    raise status_error(
                        self.provider_id, response.status_code, response.headers, raw, secrets=secrets
                    )
                logger.debug(
                    "%s stream opened (model=%s, x-request-id=%s)",
                    self.provider_id,
                    self.model,
                    response.headers.get("x-request-id", "-"),
                )
                if response.headers.get("content-type", "").startswith("application/json"):
                    # Some compatible servers ignore ``stream: true`` and answer one JSON completion.
                    for event in _events_from_completion(self.provider_id, await response.aread()):
                        yield event
                    return
                async with contextlib.aclosing(self._read_stream(response)) as events:
                    async for event in events:
                        yield event
        except httpx.HTTPError as exc:
            raise transport_error(self.provider_id, exc, secrets=secrets) from exc

    async def _read_stream(self, response: httpx.Response) -> AsyncGenerator[LLMEvent, None]:
        acc = _ChunkAccumulator(self.provider_id)
        done = False
        byte_iter = response.aiter_bytes()
        try:
            async with contextlib.aclosing(aiter_sse(byte_iter)) as events:
                async for sse in events:
                    data = sse.data.strip()
                    if data == "[DONE]":
                        done = True
                        break
                    for event in acc.feed(self._decode(data)):
                        yield event
            if not done and not acc.finished:
                raise PatterConnectionError(f"{self.provider_id} stream ended before the answer was complete")
            for event in acc.flush_calls():
                yield event
            if done:
                await _drain(byte_iter)
            if acc.usage is not None:
                yield acc.usage
        finally:
            await byte_iter.aclose()  # type: ignore[attr-defined]  # httpx returns an async generator

    def _decode(self, data: str) -> Mapping[str, Any]:
        if not data:
            return {}
        try:
            chunk = json.loads(data)
        except ValueError:
            # One garbled event should not cost the caller the whole spoken answer.
            logger.warning("%s: skipping a malformed stream event (%d bytes)", self.provider_id, len(data))
            return {}
        return chunk if isinstance(chunk, dict) else {}


def _events_from_completion(provider: str, raw: bytes) -> list[LLMEvent]:
    """A non-streamed ``chat.completion`` replayed through the chunk accumulator as one big delta."""
    acc = _ChunkAccumulator(provider)
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise PatterConnectionError(f"{provider} answered an unexpected JSON document")
    choices = [
        {**c, "delta": c.get("message") or {}} for c in doc.get("choices") or () if isinstance(c, dict)
    ]
    events = acc.feed({**doc, "choices": choices})
    events.extend(acc.flush_calls())
    return events + ([acc.usage] if acc.usage is not None else [])


async def _drain(byte_iter: AsyncIterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (normally just end-of-body) so httpx can pool the connection."""
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(_DRAIN_TIMEOUT_S):
            async for _ in byte_iter:
                pass


def _wrap_tool(tool: ToolSchema) -> dict[str, Any]:
    """``{"name","description","parameters"}`` -> the Chat Completions ``{"type":"function",...}`` form."""
    if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        return dict(tool)  # already in wire form
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise PatterConfigError(f"tool schema needs a non-empty 'name', got keys {sorted(tool)}")
    function: dict[str, Any] = {"name": name}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if "strict" in tool:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


class OpenAICompatibleLLM(OpenAILLM):
    """Any server speaking the OpenAI Chat Completions protocol: Groq, Cerebras, vLLM, Ollama, LM Studio.

    The key is ``api_key``, else the environment variable named by ``api_key_env``. When ``api_key_env``
    is given, a key is required (``PatterConfigError`` if neither is set); when it is not, the key is
    optional and no ``Authorization`` header is sent without one, which suits a local vLLM or Ollama
    (``OpenAICompatibleLLM("http://localhost:11434/v1", model="llama3.1")``). ``max_tokens_param`` names
    the wire field for ``max_tokens`` (some older servers only know ``"max_tokens"``); ``extra_body`` adds
    vendor-specific fields (e.g. vLLM's ``top_k``) verbatim.
    """

    provider_id = "openai_compatible"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str | None = None,
        *,
        api_key_env: str | None = None,
        provider_id: str = "openai_compatible",
        max_tokens_param: str = "max_completion_tokens",
        extra_body: Mapping[str, Any] | None = None,
        **options: Unpack[ChatOptions],
    ) -> None:
        self.provider_id = provider_id
        self._api_key_env = api_key_env
        self._max_tokens_param = max_tokens_param
        self._extra_body = dict(extra_body or {})
        super().__init__(api_key, model or "", base_url=base_url, **options)

    def _resolve_api_key(self, api_key: str | None) -> str | None:
        env = self._api_key_env
        key = api_key or (os.environ.get(env) if env else None)
        if env and not key:
            raise PatterConfigError(
                f"{type(self).__name__} ({self.provider_id}) needs an API key: pass api_key=... "
                f"or set the {env} environment variable."
            )
        return key or None

    def build_request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> dict[str, Any]:
        body = super().build_request(messages, tools)
        body.update(self._extra_body)
        return body


LLM = OpenAILLM

__all__ = ["LLM", "OPENAI_BASE_URL", "ChatOptions", "OpenAICompatibleLLM", "OpenAILLM"]
