"""A strict fake of OpenAI Chat Completions (``POST /v1/chat/completions``), streaming and not.

Strict means it answers the way the real API does to a bad request: 401 with OpenAI's error JSON for a
missing/wrong Bearer key, 400 for a missing ``model``, empty ``messages``, unknown roles or top-level
fields, malformed ``tools``/``tool_calls``, a ``tool`` message that does not answer the assistant
``tool_calls`` right before it, or unanswered tool calls. Streams follow the real chunk sequence (role
chunk, content fragments, tool-call deltas, finish chunk, optional usage chunk, ``[DONE]``).

    fake = FakeOpenAIChat(replies=[Reply(text="Hi!"), Reply(tool_calls=[("get_weather", '{"city":"Rome"}')])])
    async with running(fake.app) as srv:
        llm = OpenAILLM(api_key="sk-test", base_url=srv.http_url + "/v1")
        ...
    fake.last_messages()

Replies are consumed in order (plain strings are shorthand for ``Reply(text=...)``); when the script runs
out, ``fallback_text`` is answered. A callable ``(request_json) -> Reply | str`` may replace the list.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_ROLES = {"system", "developer", "user", "assistant", "tool"}
_KNOWN_FIELDS = {
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "max_tokens",
    "max_completion_tokens", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs", "user", "seed", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "service_tier", "store", "metadata", "modalities", "audio", "prediction", "reasoning_effort",
    "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
}  # fmt: skip
_UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
    "'tool_call_id'. The following tool_call_ids did not have response messages: "
)
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``tool_calls`` are ``(name, arguments_json)`` pairs, streamed as deltas with ``index`` 0, 1, ...
    ``usage`` is ``(prompt_tokens, completion_tokens)``; ``None`` derives a word count. ``status`` answers
    that HTTP error instead (``retry_after`` adds the ``retry-after`` header). ``drop_mid_stream`` cuts the
    connection after half the content. ``raw_events`` replaces the whole body with these SSE text pieces,
    each flushed separately (for garbage lines, in-stream errors, interleaved calls, ...).
    """

    text: str = ""
    tool_calls: Sequence[tuple[str, str]] = ()
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    usage: tuple[int, int] | None = None
    cached_tokens: int = 0
    status: int | None = None
    retry_after: float | None = None
    error_message: str | None = None
    drop_mid_stream: bool = False
    raw_events: Sequence[str] | None = None


Script = Sequence[Reply | str] | Callable[[dict[str, Any]], Reply | str]


class _DroppingStream(Response):
    """Sends the first half of an SSE body, then returns unfinished, so the server aborts the connection.

    (uvicorn closes the socket of a response the app left incomplete, which is exactly a mid-stream drop.)
    """

    def __init__(self, events: list[str]) -> None:
        super().__init__(media_type="text/event-stream")
        self._events = events[: len(events) // 2]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"transfer-encoding", b"chunked")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in self._events:
            await send({"type": "http.response.body", "body": event.encode("utf-8"), "more_body": True})


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def error_json(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body shape."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class FakeOpenAIChat:
    def __init__(
        self,
        api_key: str = "sk-test",
        replies: Script | None = None,
        *,
        fallback_text: str = "Sorry, I have nothing more to say.",
        chunk_chars: int = 4,
    ) -> None:
        self.api_key = api_key
        self.fallback_text = fallback_text
        self.chunk_chars = chunk_chars
        self._script: Callable[[dict[str, Any]], Reply | str] | None = None
        self._queue: list[Reply | str] = []
        if callable(replies):
            self._script = replies
        elif replies is not None:
            self._queue = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.client_ports: list[int] = []
        self.rejected: list[tuple[int, str]] = []
        self.streams_completed = 0
        self.streams_aborted = 0
        self.aborted = asyncio.Event()
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._handle, methods=["POST"])])

    # ------------------------------------------------------------------ helpers for tests
    def add(self, *replies: Reply | str) -> None:
        """Append replies to the script."""
        self._queue.extend(replies)

    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    def last_messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of the latest accepted request."""
        return list(self.requests[-1]["messages"])

    def user_texts(self) -> list[str]:
        """The last user message of every request, in order (what the agent heard each turn)."""
        out: list[str] = []
        for req in self.requests:
            users = [m for m in req["messages"] if m.get("role") == "user"]
            out.append(_text_of(users[-1]) if users else "")
        return out

    async def wait_aborted(self) -> None:
        """Wait until a client closed a stream before it ended (fails the test after 5 s)."""
        async with asyncio.timeout(5.0):
            await self.aborted.wait()

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth:
            return self._reject(
                401,
                error_json(
                    "You didn't provide an API key. You need to provide your API key in an Authorization "
                    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                ),
            )
        if auth != f"Bearer {self.api_key}":
            given = auth.removeprefix("Bearer ").strip()
            masked = given[:3] + "*" * 8 + given[-4:] if len(given) > 8 else "***"
            return self._reject(
                401,
                error_json(
                    f"Incorrect API key provided: {masked}.", "invalid_request_error", None, "invalid_api_key"
                ),
            )
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self._reject(
                400, error_json("Content-Type must be application/json", "invalid_request_error")
            )
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise BadRequest("The request body must be a JSON object.")
            _validate(body)
        except ValueError:
            return self._reject(
                400, error_json("We could not parse the JSON body of your request.", "invalid_request_error")
            )
        except BadRequest as exc:
            return self._reject(400, error_json(str(exc), "invalid_request_error", exc.param))
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if request.client is not None:
            self.client_ports.append(request.client.port)

        reply = self._next_reply(body)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status is not None:
            return _error_reply(reply)
        if not body.get("stream"):
            return JSONResponse(self._completion(body, reply))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = (
            list(reply.raw_events) if reply.raw_events is not None else self._sse(body, reply, include_usage)
        )
        if reply.drop_mid_stream:
            return _DroppingStream(events)
        return StreamingResponse(
            self._body(events, reply), media_type="text/event-stream", headers={"x-request-id": "req_fake"}
        )

    def _reject(self, status: int, payload: dict[str, Any]) -> JSONResponse:
        self.rejected.append((status, payload["error"]["message"]))
        return JSONResponse(payload, status_code=status)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self._script is not None:
            item: Reply | str = self._script(body)
        elif self._queue:
            item = self._queue.pop(0)
        else:
            item = self.fallback_text
        return Reply(text=item) if isinstance(item, str) else item

    async def _body(self, events: list[str], reply: Reply) -> AsyncIterator[bytes]:
        finished = False
        try:
            for i, event in enumerate(events):
                if i and reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
                yield event.encode("utf-8")
            finished = True
            self.streams_completed += 1
        finally:
            if not finished:
                self.streams_aborted += 1
                self.aborted.set()

    # ------------------------------------------------------------------ reply shapes
    def _sse(self, body: dict[str, Any], reply: Reply, include_usage: bool) -> list[str]:
        """The real event sequence: role, content pieces, tool-call deltas, finish, usage, ``[DONE]``."""
        cid, n, out = f"chatcmpl-fake{next(self._ids)}", self.chunk_chars, []
        base = {"id": cid, "object": "chat.completion.chunk", "created": 1712345678, "model": body["model"],
                "system_fingerprint": "fp_fake"}  # fmt: skip

        def emit(delta: dict[str, Any], finish: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            obj = {**base, "choices": [choice]} | ({"usage": None} if include_usage else {})
            out.append(f"data: {json.dumps(obj)}\n\n")

        emit({"role": "assistant", "content": "", "refusal": None})
        for i in range(0, len(reply.text), n):
            emit({"content": reply.text[i : i + n]})
        for index, (name, args) in enumerate(reply.tool_calls):
            call_id = _call_id(cid, index)
            emit({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                  "function": {"name": name, "arguments": ""}}]})  # fmt: skip
            for i in range(0, len(args), n):
                emit({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + n]}}]})
        emit({}, "tool_calls" if reply.tool_calls else "stop")
        if include_usage:
            out.append(f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(body, reply)})}\n\n")
        out.append("data: [DONE]\n\n")
        return out

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        cid = f"chatcmpl-fake{next(self._ids)}"
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": _call_id(cid, i), "type": "function", "function": {"name": name, "arguments": args}}
                for i, (name, args) in enumerate(reply.tool_calls)
            ]
        return {
            "id": cid,
            "object": "chat.completion",
            "created": 1712345678,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": _usage(body, reply),
        }


def _call_id(cid: str, index: int) -> str:
    return f"call_{cid.removeprefix('chatcmpl-')}_{index}"


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = sum(len(_text_of(m).split()) for m in body["messages"])
        completion = len(reply.text.split()) + sum(len(a) // 4 + 1 for _, a in reply.tool_calls)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _error_reply(reply: Reply) -> JSONResponse:
    status = reply.status or 500
    if status == 429:
        payload = error_json(
            reply.error_message or "Rate limit reached for requests", "requests", None, "rate_limit_exceeded"
        )
    elif status >= 500:
        payload = error_json(
            reply.error_message or "The server had an error while processing your request.", "server_error"
        )
    else:
        payload = error_json(reply.error_message or "Bad request", "invalid_request_error")
    headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after is not None else None
    return JSONResponse(payload, status_code=status, headers=headers)


# ---------------------------------------------------------------------- request validation
def _validate(body: dict[str, Any]) -> None:
    unknown = sorted(set(body) - _KNOWN_FIELDS)
    if unknown:
        raise BadRequest(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("[] is too short - 'messages'", "messages")
    _validate_messages(messages)
    tools = body.get("tools")
    names = _validate_tools(tools) if tools is not None else set()
    if tools is None:
        for key in ("tool_choice", "parallel_tool_calls"):
            if key in body:
                raise BadRequest(
                    f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.", key
                )
    _validate_tool_choice(body.get("tool_choice"), names)
    if "max_tokens" in body and "max_completion_tokens" in body:
        raise BadRequest("Use either max_tokens or max_completion_tokens, not both.", "max_tokens")
    if "stream_options" in body and not body.get("stream"):
        raise BadRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
        )
    for key, low, high in (
        ("temperature", 0, 2),
        ("top_p", 0, 1),
        ("frequency_penalty", -2, 2),
        ("presence_penalty", -2, 2),
    ):
        value = body.get(key)
        if value is not None and (
            not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high
        ):
            raise BadRequest(f"Invalid '{key}': expected a number between {low} and {high}.", key)


def _validate_messages(messages: list[Any]) -> None:
    pending: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict) or msg.get("role") not in _ROLES:
            raise BadRequest(
                f"Invalid value for '{where}.role': expected one of {sorted(_ROLES)}.", f"{where}.role"
            )
        role = msg["role"]
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in pending:
                raise BadRequest(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                    f"with 'tool_calls' ({where}.tool_call_id={call_id!r}).",
                    f"{where}.tool_call_id",
                )
            if not isinstance(msg.get("content"), str | list):
                raise BadRequest(f"Missing required parameter: '{where}.content'.", f"{where}.content")
            pending.discard(call_id)
            continue
        if pending:
            raise BadRequest(_UNANSWERED + str(sorted(pending)), f"{where}.role")
        if role == "assistant" and msg.get("tool_calls") is not None:
            pending = _validate_tool_calls(msg["tool_calls"], where)
            if msg.get("content") is not None and not isinstance(msg["content"], str | list):
                raise BadRequest(f"Invalid type for '{where}.content'.", f"{where}.content")
        elif not isinstance(msg.get("content"), str | list):
            raise BadRequest(f"Missing required parameter: '{where}.content'.", f"{where}.content")
    if pending:
        raise BadRequest(_UNANSWERED + str(sorted(pending)), "messages")


def _validate_tool_calls(calls: Any, where: str) -> set[str]:
    if not isinstance(calls, list) or not calls:
        raise BadRequest(f"Invalid '{where}.tool_calls': empty array.", f"{where}.tool_calls")
    ids: set[str] = set()
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
            raise BadRequest(f"Missing required parameter: '{at}.id'.", f"{at}.id")
        if call.get("type") != "function":
            raise BadRequest(f"Missing required parameter: '{at}.type'.", f"{at}.type")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(f"Missing required parameter: '{at}.function.name'.", f"{at}.function.name")
        if not isinstance(fn.get("arguments"), str):
            raise BadRequest(
                f"Invalid type for '{at}.function.arguments': expected a string.", f"{at}.function.arguments"
            )
        ids.add(call["id"])
    return ids


def _validate_tools(tools: Any) -> set[str]:
    if not isinstance(tools, list):
        raise BadRequest("Invalid type for 'tools': expected an array.", "tools")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict):
            raise BadRequest(f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}].function")
        name = fn.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise BadRequest(
                f"Invalid 'tools[{i}].function.name': string does not match pattern.", f"tools[{i}]"
            )
        params = fn.get("parameters")
        if params is not None and (not isinstance(params, dict) or params.get("type") != "object"):
            raise BadRequest(
                f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'.",
                f"tools[{i}].function.parameters",
            )
        if name in names:
            raise BadRequest(f"Duplicate tool name: {name}", "tools")
        names.add(name)
    return names


def _validate_tool_choice(choice: Any, names: set[str]) -> None:
    if choice is None or choice in ("none", "auto", "required"):
        return
    fn = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(choice, dict) or choice.get("type") != "function" or not isinstance(fn, dict):
        raise BadRequest("Invalid value for 'tool_choice'.", "tool_choice")
    if fn.get("name") not in names:
        raise BadRequest(
            f"Invalid value for 'tool_choice': no function named {fn.get('name')!r} in 'tools'.",
            "tool_choice",
        )
