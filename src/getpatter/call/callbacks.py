"""User callbacks as bus observers: ``on_transcript`` fires per committed user turn and per agent reply."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import AgentUtterance, ToolCalled, ToolResult, UserTranscript

log = logging.getLogger("getpatter.callbacks")


def transcript_observer(callback: Callable[[dict[str, Any]], Any]) -> Callable[[EventBus, CallContext], None]:
    """Build an observer that calls ``callback({role, text, call_id, history})`` (API.md A.11)."""

    def attach(bus: EventBus, ctx: CallContext) -> None:
        history: list[dict[str, Any]] = []

        async def fire(role: str, text: str, at: float, **extra: Any) -> None:
            if role != "tool":
                history.append({"role": role, "text": text, "timestamp": at})
            payload = {"role": role, "text": text, "call_id": ctx.call_id, "history": list(history), **extra}
            try:
                result = callback(payload)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_transcript callback failed for call %s", ctx.call_id)

        bus.on(UserTranscript, lambda ev: fire("user", ev.text, ev.at))
        bus.on(AgentUtterance, lambda ev: fire("assistant", ev.text, ev.at) if ev.text else None)

        def tool_event(ev: ToolCalled | ToolResult) -> Any:
            result = ev.result if isinstance(ev, ToolResult) else None
            return fire("tool", "", ev.at, tool_name=ev.name, tool_args=ev.arguments, tool_result=result)

        bus.on(ToolCalled, tool_event)
        bus.on(ToolResult, tool_event)

    return attach
