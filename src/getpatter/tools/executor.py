"""``ToolExecutor``: runs the model's tool calls for one phone call and never lets one break the call.

Whatever goes wrong -- arguments that are not a JSON object, an unknown tool, a handler that raises or
hangs, a webhook that fails -- becomes a :class:`ToolOutcome` whose ``result`` is the JSON text
``{"error": "...", "fallback": true}`` and ``is_error=True``, so the model can apologise or try another
way while the caller stays on the line. Only cancellation (barge-in, hang-up) propagates.

Handlers get ``(arguments, context)``; sync handlers run in a worker thread (``asyncio.to_thread``) so a
blocking lookup cannot stall audio. On timeout a sync handler's thread cannot be killed: it finishes in the
background and its result is dropped. Results: a ``str`` goes to the model as is; anything else is JSON.

One executor per call: it owns the call's context dict and the shared webhook HTTP client; close it with
:meth:`ToolExecutor.aclose` (or ``async with``) when the call ends.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from getpatter.errors import PatterConfigError
from getpatter.tools.ssrf import Resolver, WebhookBlockedError
from getpatter.tools.system import (
    SystemHandler,
    SystemToolArgumentError,
    system_arguments,
    system_tool_schema,
    validate_system_handlers,
)
from getpatter.tools.tool import Tool, ToolArgumentError, ToolHandler, normalize_tools
from getpatter.tools.webhook import Sleep, WebhookCaller, WebhookToolError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 300.0
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """One finished tool call. ``result`` is exactly what goes back to the model."""

    name: str
    arguments: dict[str, Any]
    result: str
    is_error: bool
    duration_ms: float


class _Failure(Exception):
    """A tool call that failed in an expected way; the message is for the model."""


def error_payload(message: str) -> str:
    """The JSON the model receives when a tool fails: ``{"error": message, "fallback": true}``."""
    return json.dumps({"error": message[:_MAX_ERROR_CHARS], "fallback": True}, ensure_ascii=False)


def encode_result(value: object) -> str:
    """A handler's return value as model-facing text: ``str`` unchanged, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def parse_arguments(raw: str | Mapping[str, Any]) -> dict[str, Any]:
    """The model's arguments as a dict. An empty string means no arguments (some models send ``""``)."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        raise _Failure(f"arguments must be a JSON object string, got {type(raw).__name__}")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise _Failure(f"arguments are not valid JSON ({exc.args[0] if exc.args else exc})") from None
    if not isinstance(value, dict):
        raise _Failure(f"arguments must be a JSON object, got {type(value).__name__}")
    return value


def _is_async(handler: object) -> bool:
    call = type(handler).__call__ if not inspect.isroutine(handler) else None
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(call)


def _check_default_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"default_timeout_s must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise PatterConfigError(
            f"default_timeout_s={value!r} must be a positive number. Fix: default_timeout_s=10."
        )
    return min(float(value), MAX_TIMEOUT_S)


class ToolExecutor:
    """Runs user tools (handlers and webhooks) and the system tools for one call.

    ``context`` is the call context dict handed to handlers (and whose ``call_id``/``caller``/``callee``
    go into webhook requests); it is kept by reference, so the call layer may fill it in later.
    ``system_handlers`` maps ``"transfer_call"``/``"end_call"`` to the call layer's async actions; a
    system tool is offered to the model only when its handler is given. ``sleep`` and ``resolve`` are
    injection points for tests (webhook back-off and DNS).
    """

    def __init__(
        self,
        tools: Iterable[Tool | Mapping[str, Any]] | None,
        *,
        context: dict[str, Any],
        system_handlers: Mapping[str, SystemHandler] | None = None,
        allow_private_webhooks: bool = False,
        default_timeout_s: float = DEFAULT_TIMEOUT_S,
        sleep: Sleep | None = None,
        resolve: Resolver | None = None,
    ) -> None:
        if not isinstance(context, Mapping):
            raise TypeError(f"context must be a dict, got {type(context).__name__}")
        self._tools = {t.name: t for t in normalize_tools(tools)}
        self._context: dict[str, Any] = context if isinstance(context, dict) else dict(context)
        self._system = validate_system_handlers(system_handlers)
        self._default_timeout_s = _check_default_timeout(default_timeout_s)
        self._webhooks = WebhookCaller(
            allow_private=bool(allow_private_webhooks), sleep=sleep, resolve=resolve
        )

    @property
    def tools(self) -> tuple[Tool, ...]:
        """The user tools, in the order given."""
        return tuple(self._tools.values())

    @property
    def context(self) -> dict[str, Any]:
        return self._context

    def schemas(self) -> list[dict[str, Any]]:
        """``{"name", "description", "parameters"}`` for every user tool, then the enabled system tools."""
        schemas = [t.schema() for t in self._tools.values()]
        schemas.extend(system_tool_schema(name) for name in sorted(self._system, reverse=True))
        return schemas

    def timeout_for(self, tool: Tool) -> float:
        """The tool's own ``timeout_s``, else the executor default, clamped to 300 s."""
        return min(tool.timeout_s if tool.timeout_s is not None else self._default_timeout_s, MAX_TIMEOUT_S)

    async def execute(self, name: str, arguments_json: str | Mapping[str, Any]) -> ToolOutcome:
        """Run one tool call; always returns an outcome (errors included), only cancellation raises."""
        started = time.perf_counter()
        arguments: dict[str, Any] = {}
        try:
            arguments = parse_arguments(arguments_json)
            if name in self._system:
                result = await self._run_system(name, arguments)
            elif name in self._tools:
                result = await self._run_tool(self._tools[name], arguments)
            else:
                available = sorted([*self._tools, *self._system])
                raise _Failure(f"unknown tool {name!r}; available tools: {available}")
        except (
            _Failure,
            ToolArgumentError,
            SystemToolArgumentError,
            WebhookToolError,
            WebhookBlockedError,
        ) as exc:
            # argument errors may quote what the model sent (a phone number): log the kind, not the text
            reason = "invalid arguments" if isinstance(exc, SystemToolArgumentError) else str(exc)
            logger.warning("tool %r failed: %s", name, reason)
            return self._outcome(name, arguments, error_payload(f"tool {name!r}: {exc}"), True, started)
        except Exception as exc:
            logger.exception("tool %r raised", name)
            message = f"tool {name!r} failed: {type(exc).__name__}: {exc}"
            return self._outcome(name, arguments, error_payload(message), True, started)
        return self._outcome(name, arguments, result, False, started)

    @staticmethod
    def _outcome(
        name: str, arguments: dict[str, Any], result: str, is_error: bool, started: float
    ) -> ToolOutcome:
        duration_ms = (time.perf_counter() - started) * 1000.0
        return ToolOutcome(name, arguments, result, is_error, duration_ms)

    async def _run_system(self, name: str, arguments: dict[str, Any]) -> str:
        checked = system_arguments(name, arguments)
        timeout = self._default_timeout_s
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return encode_result(await self._system[name](checked))
        except TimeoutError:
            if scope.expired():
                raise _Failure(f"timed out after {timeout:g}s") from None
            raise

    async def _run_tool(self, tool: Tool, arguments: dict[str, Any]) -> str:
        timeout = self.timeout_for(tool)
        if tool.handler is None:
            return await self._webhooks.call(
                tool.webhook_url, tool.name, arguments, self._context, timeout_s=timeout
            )
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return encode_result(await self._call_handler(tool.handler, arguments))
        except TimeoutError:
            if scope.expired():
                raise _Failure(f"timed out after {timeout:g}s") from None
            raise

    async def _call_handler(self, handler: ToolHandler, arguments: dict[str, Any]) -> object:
        if _is_async(handler):
            value = handler(arguments, self._context)
        else:
            value = await asyncio.to_thread(handler, arguments, self._context)
        if inspect.isawaitable(value):
            value = await value
        return value

    async def aclose(self) -> None:
        """Release the webhook HTTP client. Idempotent."""
        await self._webhooks.aclose()

    async def __aenter__(self) -> ToolExecutor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_TIMEOUT_S",
    "ToolExecutor",
    "ToolOutcome",
    "encode_result",
    "error_payload",
    "parse_arguments",
]
