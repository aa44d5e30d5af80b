"""One instance's mailbox in a fleet: a Redis pub/sub channel ``{prefix}:inst:{instance_id}``.

Other instances send it JSON messages (``{"kind": ..., ...}``) about calls this instance owns: webhooks to
handle (:mod:`.forward`), media sessions of its calls that ran elsewhere (:mod:`.media_relay`). Pub/sub
tells the sender how many instances received a message, so a sender knows at once when the owner is gone
(and handles the message itself). While Redis is away nothing arrives here; the loop resubscribes when it
is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from getpatter.fleet.redis_link import is_connection_error

if TYPE_CHECKING:
    from getpatter.fleet.redis_link import RedisLink

log = logging.getLogger("getpatter.fleet")

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[None]]


class Inbox:
    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._handlers: dict[str, Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()
        #: Set while subscribed (tests and ``start`` wait for it).
        self.listening = asyncio.Event()

    def channel(self, instance_id: str) -> str:
        return self._link.key("inst", instance_id)

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    async def send(self, instance_id: str, message: Message) -> bool:
        """Deliver ``message`` to ``instance_id`` now; False when nobody received it (gone, or no Redis)."""
        text = json.dumps(message, separators=(",", ":"))
        receivers = await self._link.call(lambda r: r.publish(self.channel(instance_id), text), fallback=0)
        return bool(receivers)

    async def start(self, timeout: float = 5.0) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen(), name="getpatter-fleet-inbox")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout)

    async def _listen(self) -> None:
        link = self._link
        while not link.closed:
            await link.wait_healthy()
            if link.closed:
                return
            pubsub = link.blocking_client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel(link.instance_id))
                self.listening.set()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._dispatch(str(message.get("data") or ""))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                if is_connection_error(exc):
                    link.lost(exc)
                else:
                    log.exception("fleet inbox failed; resubscribing")
                await asyncio.sleep(0.1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
            handler = self._handlers.get(str(message.get("kind")))
        except (ValueError, AttributeError):
            log.warning("fleet inbox: dropped a malformed message")
            return
        if handler is None:
            log.warning("fleet inbox: no handler for %r", message.get("kind"))
            return

        async def run() -> None:
            try:
                await handler(message)
            except Exception:
                log.exception("fleet inbox: handling %r failed", message.get("kind"))

        task = asyncio.get_running_loop().create_task(run())
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._work:
            await asyncio.wait(set(self._work), timeout=2.0)
