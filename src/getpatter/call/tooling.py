"""One call's tools: the user's tools and the system tools, run by the executor, announced on the bus."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import ToolCalled, ToolResult
from getpatter.tools import ToolExecutor


class CallTools:
    """``run(name, arguments_json) -> str`` is what conversations call; it never raises but on cancel.

    System tools: ``transfer_call(number)`` transfers at once; ``end_call(reason)`` hangs up once the
    agent's current reply has been heard (so a goodbye is never cut).
    """

    def __init__(
        self,
        tools: Sequence[Any],
        *,
        ctx: CallContext,
        bus: EventBus,
        transfer: Callable[[str], Awaitable[None]],
        hangup: Callable[[], Awaitable[None]],
        allow_private_webhooks: bool = False,
    ) -> None:
        self._bus = bus
        self._ctx = ctx
        self._transfer = transfer
        self._hangup = hangup
        self.executor = ToolExecutor(
            tools,
            context={
                "call_id": ctx.call_id,
                "caller": ctx.caller,
                "callee": ctx.callee,
                "variables": ctx.variables,
            },
            system_handlers={"transfer_call": self._transfer_call, "end_call": self._end_call},
            allow_private_webhooks=allow_private_webhooks,
        )

    def schemas(self) -> list[dict[str, Any]]:
        return self.executor.schemas()

    async def run(self, name: str, arguments_json: str) -> str:
        try:
            arguments = json.loads(arguments_json) if arguments_json.strip() else {}
        except ValueError:
            arguments = {}
        if not isinstance(arguments, dict):
            arguments = {}
        self._bus.emit(ToolCalled(call_id=self._ctx.call_id, name=name, arguments=arguments))
        outcome = await self.executor.execute(name, arguments_json)
        self._bus.emit(
            ToolResult(
                call_id=self._ctx.call_id,
                name=name,
                arguments=outcome.arguments,
                result=outcome.result,
                is_error=outcome.is_error,
            )
        )
        return outcome.result

    async def _transfer_call(self, args: dict[str, Any]) -> str:
        await self._transfer(str(args["number"]))
        return json.dumps({"status": "transferring", "number": args["number"]})

    async def _end_call(self, args: dict[str, Any]) -> str:
        await self._hangup()
        return json.dumps({"status": "ending the call after this reply", "reason": args.get("reason", "")})

    async def aclose(self) -> None:
        await self.executor.aclose()
