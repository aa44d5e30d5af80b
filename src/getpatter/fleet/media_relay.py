"""The media session of a placed call may run on another instance: tell the one that placed it.

The load balancer sends a call's media WebSocket to any instance, which runs the conversation (and fires
``on_call_end`` there: once, where the call ran). The placing instance still owes ``phone.call(wait=True)``
its result, transcript included, so the instance running the media sends the owner's
:class:`~getpatter.fleet.inbox.Inbox` a ``media`` message when the session starts and when it ends
(transcript, duration, cost); the owner's registry resolves the result from them as it would from its own
session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from getpatter.call.events import CallSummary

if TYPE_CHECKING:
    from getpatter.call.bus import EventBus
    from getpatter.call.context import CallContext
    from getpatter.fleet.forward import WebhookRouter
    from getpatter.fleet.inbox import Inbox
    from getpatter.server.calls import OutboundRegistry

log = logging.getLogger("getpatter.fleet")


class MediaRelay:
    def __init__(self, registry: OutboundRegistry, router: WebhookRouter, inbox: Inbox, me: str) -> None:
        self._registry = registry
        self._router = router
        self._inbox = inbox
        self._me = me
        self._tasks: set[asyncio.Task[Any]] = set()

    def observe(self, bus: EventBus, ctx: CallContext) -> None:
        """Session observer: an outbound call this instance did not place reports to its owner."""
        record = self._registry.get(ctx.call_id)
        if ctx.direction != "outbound" or (record is not None and record.placed):
            return
        call_id = ctx.call_id
        owner: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

        async def started() -> None:
            found = await self._router.owner_of(call_id)
            owner.set_result(found if found != self._me else None)
            if found and found != self._me:
                await self._inbox.send(found, {"kind": "media", "event": "started", "call_id": call_id})

        async def ended(summary: CallSummary) -> None:
            to = await owner
            if to is None:
                return
            cost = getattr(summary.metrics, "cost", None)
            message = {
                "kind": "media",
                "event": "ended",
                "call_id": call_id,
                "transcript": [dict(line) for line in summary.ended.transcript],
                "duration_seconds": summary.ended.duration_seconds,
                "cost": cost.to_dict() if cost is not None else None,
            }
            if not await self._inbox.send(to, message):
                log.info("call %s: its instance %s is gone; its result is not reported", call_id, to)

        self._spawn(started())
        bus.on(CallSummary, lambda summary: self._spawn(ended(summary)))

    async def receive(self, message: dict[str, Any]) -> None:
        """Inbox handler on the owner."""
        call_id = str(message.get("call_id") or "")
        if message.get("event") == "started":
            self._registry.media_started_elsewhere(call_id)
        elif message.get("event") == "ended":
            from getpatter.metrics.model import CostBreakdown

            raw = message.get("cost")
            cost = CostBreakdown(**raw) if isinstance(raw, dict) else None
            transcript = tuple(dict(line) for line in message.get("transcript") or ())
            duration = message.get("duration_seconds")
            self._registry.media_ended_elsewhere(
                call_id, transcript, float(duration) if duration is not None else None, cost
            )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
