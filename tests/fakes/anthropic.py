"""A strict fake of the Anthropic Messages API (``POST /v1/messages``, streaming).

Strict means it refuses what the real API refuses, with Anthropic's error JSON: a missing/wrong
``x-api-key`` (401 ``authentication_error``), a missing ``anthropic-version`` header, a missing
``max_tokens``, unknown top-level or tool fields, a ``system`` role inside ``messages``, turns that do not
alternate user/assistant or do not start with a user turn, empty content, a ``tool_result`` that does not
answer a ``tool_use`` of the assistant turn right before it, unanswered ``tool_use`` blocks, ``tool_result``
blocks after text, malformed ``cache_control`` or more than four cache breakpoints.

Streams follow the documented event flow: ``message_start`` (usage incl. cache counts), one ``ping``,
per block ``content_block_start`` / ``content_block_delta``... / ``content_block_stop`` (tool input streamed
as ``input_json_delta`` fragments cut mid-token, the first one empty), ``message_delta`` (stop_reason,
cumulative output tokens), ``message_stop`` — every event with its ``event:`` line.

    fake = FakeAnthropic(replies=[Reply(text="Hi!"), Reply(tool_calls=[("get_weather", '{"city":"Rome"}')])])
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key="sk-ant-test", base_url=srv.http_url)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_TOP_LEVEL = {
    "model", "max_tokens", "messages", "system", "tools", "tool_choice", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "metadata", "thinking", "service_tier", "container", "mcp_servers",
}  # fmt: skip
_TOOL_KEYS = {"name", "description", "input_schema", "cache_control", "strict", "type"}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``tool_calls`` are ``(name, input_json)`` pairs; ``usage`` is ``(input, output)``.

    ``status`` answers that HTTP error instead (``error_type`` picks Anthropic's error type), ``stream_error``
    sends an in-stream ``error`` event after the first text delta, ``drop_mid_stream`` cuts the connection
    after half the events, ``chunk_delay_s`` spaces the events out.
    """

    text: str = ""
    tool_calls: Sequence[tuple[str, str]] = ()
    usage: tuple[int, int] = (10, 5)
    cache_read: int = 0
    cache_write: int = 0
    status: int | None = None
    error_type: str | None = None
    retry_after: float | None = None
    stream_error: str | None = None
    drop_mid_stream: bool = False
    chunk_delay_s: float = 0.0


class DroppingStream(Response):
    """Sends the first half of an SSE body and returns unfinished, so uvicorn aborts the connection."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(media_type="text/event-stream")
        self._events = events[: len(events) // 2]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"transfer-encoding", b"chunked")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in self._events:
            await send({"type": "http.response.body", "body": event.encode("utf-8"), "more_body": True})


class StreamRecorder:
    """Counts finished and aborted SSE bodies, so tests can prove a client closed its stream."""

    def __init__(self) -> None:
        self.completed = 0
        self.aborted_count = 0
        self.aborted = asyncio.Event()

    async def body(self, events: list[str], delay_s: float) -> AsyncIterator[bytes]:
        finished = False
        try:
            for i, event in enumerate(events):
                if i and delay_s:
                    await asyncio.sleep(delay_s)
                yield event.encode("utf-8")
            finished = True
            self.completed += 1
        finally:
            if not finished:
                self.aborted_count += 1
                self.aborted.set()

    async def wait_aborted(self) -> None:
        async with asyncio.timeout(5.0):
            await self.aborted.wait()


class BadRequest(Exception):
    pass


_STATUS_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
    529: "overloaded_error",
}  # fmt: skip


def error_body(type_: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": type_, "message": message}}


class FakeAnthropic:
    def __init__(self, api_key: str = "sk-ant-test", replies: Sequence[Reply | str] = ()) -> None:
        self.api_key = api_key
        self._queue: list[Reply | str] = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.rejected: list[tuple[int, str]] = []
        self.client_ports: list[int] = []
        self.streams = StreamRecorder()
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[Route("/v1/messages", self._handle, methods=["POST"])])

    def add(self, *replies: Reply | str) -> None:
        self._queue.extend(replies)

    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    # ------------------------------------------------------------------------------------------ HTTP
    async def _handle(self, request: Request) -> Response:
        key = request.headers.get("x-api-key")
        if key != self.api_key:
            return self._reject(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self._reject(400, "invalid_request_error", "anthropic-version: header is required")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return self._reject(400, "invalid_request_error", "Content-Type must be application/json")
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise BadRequest("request body must be a JSON object")
            validate(body)
        except ValueError:
            return self._reject(400, "invalid_request_error", "There was an issue with your request JSON.")
        except BadRequest as exc:
            return self._reject(400, "invalid_request_error", str(exc))
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if request.client is not None:
            self.client_ports.append(request.client.port)
        item = self._queue.pop(0) if self._queue else "OK."
        reply = Reply(text=item) if isinstance(item, str) else item
        if reply.status is not None:
            kind = reply.error_type or _STATUS_TYPES.get(reply.status, "api_error")
            headers = {"retry-after": f"{reply.retry_after:g}"} if reply.retry_after is not None else None
            return JSONResponse(error_body(kind, f"fake {kind}"), status_code=reply.status, headers=headers)
        events = self._events(body, reply)
        if reply.drop_mid_stream:
            return DroppingStream(events)
        return StreamingResponse(
            self.streams.body(events, reply.chunk_delay_s),
            media_type="text/event-stream",
            headers={"request-id": "req_fake"},
        )

    def _reject(self, status: int, type_: str, message: str) -> JSONResponse:
        self.rejected.append((status, message))
        return JSONResponse(error_body(type_, message), status_code=status)

    def _events(self, body: dict[str, Any], reply: Reply) -> list[str]:
        out: list[str] = []

        def emit(payload: dict[str, Any]) -> None:
            out.append(f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n")

        n = next(self._ids)
        input_tokens, output_tokens = reply.usage
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": 1,
            "cache_creation_input_tokens": reply.cache_write,
            "cache_read_input_tokens": reply.cache_read,
        }
        message = {"id": f"msg_fake{n}", "type": "message", "role": "assistant", "model": body["model"],
                   "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}  # fmt: skip
        emit({"type": "message_start", "message": message})
        emit({"type": "ping"})
        index = 0
        if reply.text:
            emit({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
            for i in range(0, len(reply.text), 5):
                emit({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": reply.text[i : i + 5]}})  # fmt: skip
                if i == 0 and reply.stream_error:
                    emit({"type": "error", "error": {"type": reply.stream_error, "message": "Overloaded"}})
                    return out
            emit({"type": "content_block_stop", "index": 0})
            index = 1
        for j, (name, args) in enumerate(reply.tool_calls):
            block = {"type": "tool_use", "id": f"toolu_fake{n}_{j}", "name": name, "input": {}}
            emit({"type": "content_block_start", "index": index, "content_block": block})
            for piece in ["", *(args[i : i + 3] for i in range(0, len(args), 3))]:
                emit({"type": "content_block_delta", "index": index,
                      "delta": {"type": "input_json_delta", "partial_json": piece}})  # fmt: skip
            emit({"type": "content_block_stop", "index": index})
            index += 1
        stop = "tool_use" if reply.tool_calls else "end_turn"
        emit({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
              "usage": {"output_tokens": output_tokens}})  # fmt: skip
        emit({"type": "message_stop"})
        return out


# ---------------------------------------------------------------------------------------------- validation
def validate(body: dict[str, Any]) -> None:
    unknown = sorted(set(body) - _TOP_LEVEL)
    if unknown:
        raise BadRequest(f"{unknown[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required")
    if body.get("stream") is not True:
        raise BadRequest("this fake only serves stream: true")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 1):
        raise BadRequest("temperature: Input should be less than or equal to 1")
    breakpoints = _validate_system(body.get("system")) + _validate_tools(body.get("tools"))
    breakpoints += _validate_messages(body.get("messages"))
    if breakpoints > 4:
        raise BadRequest(f"A maximum of 4 blocks with cache_control may be provided. Found {breakpoints}.")


def _cache(block: dict[str, Any], where: str) -> int:
    if "cache_control" not in block:
        return 0
    cc = block["cache_control"]
    if not isinstance(cc, dict) or cc.get("type") != "ephemeral" or set(cc) - {"type", "ttl"}:
        raise BadRequest(f"{where}.cache_control: Input tag does not match the expected tag 'ephemeral'")
    return 1


def _validate_system(system: Any) -> int:
    if system is None or isinstance(system, str):
        return 0
    if not isinstance(system, list):
        raise BadRequest("system: Input should be a valid string or list")
    count = 0
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not block.get("text"):
            raise BadRequest(f"system.{i}: text content blocks must be non-empty")
        count += _cache(block, f"system.{i}")
    return count


def _validate_tools(tools: Any) -> int:
    if tools is None:
        return 0
    if not isinstance(tools, list):
        raise BadRequest("tools: Input should be a valid list")
    names: set[str] = set()
    count = 0
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools.{i}: Input should be an object")
        extra = sorted(set(tool) - _TOOL_KEYS)
        if extra:
            raise BadRequest(f"tools.{i}.{extra[0]}: Extra inputs are not permitted")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise BadRequest(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise BadRequest(f"tools.{i}.input_schema.type: Input should be 'object'")
        if name in names:
            raise BadRequest("tools: Tool names must be unique.")
        names.add(name)
        count += _cache(tool, f"tools.{i}")
    return count


def _validate_messages(messages: Any) -> int:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: Field required")
    count = 0
    open_calls: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("user", "assistant"):
            raise BadRequest(
                f'{where}: Unexpected role "{role}". Allowed roles are "user" or "assistant". '
                "For instructions or context, use the top-level `system` parameter."
            )
        if i == 0 and role != "user":
            raise BadRequest('messages: first message must use the "user" role')
        if i and messages[i - 1].get("role") == role:
            raise BadRequest('messages: roles must alternate between "user" and "assistant"')
        content = msg.get("content")
        if isinstance(content, str):
            if not content:
                raise BadRequest(f"{where}: all messages must have non-empty content")
            blocks: list[Any] = [{"type": "text", "text": content}]
        elif isinstance(content, list) and content:
            blocks = content
        else:
            raise BadRequest(f"{where}: all messages must have non-empty content")
        answered: set[str] = set()
        seen_other = False
        next_calls: set[str] = set()
        for j, block in enumerate(blocks):
            at = f"{where}.content.{j}"
            kind = block.get("type") if isinstance(block, dict) else None
            count += _cache(block, at) if isinstance(block, dict) else 0
            if kind == "text":
                if not isinstance(block.get("text"), str) or not block["text"]:
                    raise BadRequest(f"{at}: text content blocks must be non-empty")
                seen_other = True
            elif kind == "image" and role == "user":
                seen_other = True
            elif kind == "tool_use" and role == "assistant":
                if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                    raise BadRequest(f"{at}.id: Field required")
                if not isinstance(block.get("input"), dict):
                    raise BadRequest(f"{at}.input: Input should be a valid dictionary")
                next_calls.add(block["id"])
            elif kind == "tool_result" and role == "user":
                if seen_other:
                    raise BadRequest(f"{at}: tool_result blocks must come before any other content")
                use_id = block.get("tool_use_id")
                if use_id not in open_calls:
                    raise BadRequest(
                        f"{at}: unexpected `tool_use_id` found in `tool_result` blocks: {use_id}. Each "
                        "`tool_result` block must have a corresponding `tool_use` block in the previous "
                        "message."
                    )
                if not isinstance(block.get("content", ""), str | list):
                    raise BadRequest(f"{at}.content: Input should be a valid string or list")
                answered.add(use_id)
            else:
                raise BadRequest(
                    f"{at}: Input tag '{kind}' found using 'type' does not match the expected tags"
                )
        if role == "user":
            missing = open_calls - answered
            if missing:
                raise BadRequest(
                    f"{where}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(sorted(missing))}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
        open_calls = next_calls if role == "assistant" else set()
    if open_calls:
        raise BadRequest("messages: the final assistant turn has `tool_use` blocks without results")
    return count
