"""Where a turn's reply text comes from: the user's ``on_message`` handler, or the LLM and its tool loop.

Text is handed on as it arrives (``on_text``), so the pipeline can start speaking the first sentence
while the rest is still being generated.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from getpatter.call.bus import EventBus
from getpatter.call.clock import SYSTEM_CLOCK, Clock
from getpatter.call.context import CallContext, HistoryEntry
from getpatter.call.events import UsageRecorded
from getpatter.call.hooks import HookRunner
from getpatter.call.retry import REPLY_RETRY, RetryPolicy
from getpatter.call.turn_clock import Turn
from getpatter.errors import PatterError
from getpatter.llm.base import LLM, Message, TextDelta, ToolCallRequest, ToolSchema, Usage

MessageHandler = Callable[..., Any]
ToolRunner = Callable[[str, str], Awaitable[str]]
#: LLM rounds per turn (each round may call tools); stops a model that loops on tool calls.
MAX_TOOL_ROUNDS = 5


class ReplySource:
    def __init__(
        self,
        *,
        ctx: CallContext,
        bus: EventBus,
        llm: LLM | None,
        on_message: MessageHandler | None,
        call_control: Any,
        hooks: HookRunner,
        use_before_llm: bool,
        tools: list[ToolSchema] | None = None,
        run_tool: ToolRunner | None = None,
        retry: RetryPolicy = REPLY_RETRY,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._retry = retry
        self._clock = clock
        self._ctx = ctx
        self._bus = bus
        self._llm = llm
        self._on_message = on_message
        self._control = call_control
        self._hooks = hooks
        self._use_before_llm = use_before_llm
        self._tools = tools or None
        self._run_tool = run_tool

    async def produce(
        self,
        *,
        user_text: str,
        history: Sequence[HistoryEntry],
        messages: list[Message],
        on_text: Callable[[str], None],
        turn: Turn,
    ) -> None:
        """Generate the reply; tool-call rounds are appended to ``messages`` (the call's LLM context), the
        first token is stamped on ``turn``."""
        if self._on_message is not None:
            reply = await self._ask_handler(user_text, history)
            turn.timings = replace(turn.timings, llm_first_token=time.monotonic())
            on_text(reply)
        elif self._llm is not None:
            await self._stream_llm(self._llm, messages, on_text, turn)

    async def _ask_handler(self, user_text: str, history: Sequence[HistoryEntry]) -> str:
        assert self._on_message is not None
        event = {
            "text": user_text,
            "call_id": self._ctx.call_id,
            "caller": self._ctx.caller,
            "callee": self._ctx.callee,
            "history": [h.as_dict() for h in history],
        }
        result = _call_handler(self._on_message, event, self._control)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return ""
        if isinstance(result, dict):
            return str(result.get("text", ""))
        return str(result)

    async def _stream_llm(
        self, llm: LLM, messages: list[Message], on_text: Callable[[str], None], turn: Turn
    ) -> None:
        for _round in range(MAX_TOOL_ROUNDS):
            context = await self._hooks.before_llm(messages) if self._use_before_llm else messages
            calls, text_parts = await self._one_round(llm, context, on_text, turn)
            if not calls:
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": "".join(text_parts) or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments},
                        }
                        for c in calls
                    ],
                }
            )
            for call in calls:
                result = await self._execute_tool(call)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result})

    async def _one_round(
        self, llm: LLM, context: list[Message], on_text: Callable[[str], None], turn: Turn
    ) -> tuple[list[ToolCallRequest], list[str]]:
        """One LLM request; a failure before the first event may be retried (``REPLY_RETRY``: a 429, once,
        after its Retry-After)."""
        attempt = 0
        while True:
            attempt += 1
            calls: list[ToolCallRequest] = []
            text_parts: list[str] = []
            try:
                async with contextlib.aclosing(llm.stream(context, self._tools)) as events:  # type: ignore[type-var]
                    async for ev in events:
                        if isinstance(ev, TextDelta):
                            if turn.timings.llm_first_token is None:
                                turn.timings = replace(turn.timings, llm_first_token=time.monotonic())
                            text_parts.append(ev.text)
                            on_text(ev.text)
                        elif isinstance(ev, ToolCallRequest):
                            calls.append(ev)
                        elif isinstance(ev, Usage):
                            self._record_usage(llm, ev)
                return calls, text_parts
            except PatterError as exc:
                if text_parts or calls or not self._retry.should_retry(attempt, exc):
                    raise
                await self._clock.sleep(self._retry.wait_s(attempt, exc))

    async def _execute_tool(self, call: ToolCallRequest) -> str:
        if self._run_tool is None:
            return json.dumps({"error": f"unknown tool {call.name}", "fallback": True})
        return await self._run_tool(call.name, call.arguments)

    def _record_usage(self, llm: LLM, usage: Usage) -> None:
        self._bus.emit(
            UsageRecorded(
                call_id=self._ctx.call_id,
                kind="llm",
                provider=llm.provider_id,
                model=llm.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            )
        )


def _call_handler(handler: MessageHandler, event: dict[str, Any], control: Any) -> Any:
    """``on_message`` may take ``(event)`` or ``(event, call_control)``."""
    try:
        params = [
            p
            for p in inspect.signature(handler).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) >= 2:
        return handler(event, control)
    return handler(event)
