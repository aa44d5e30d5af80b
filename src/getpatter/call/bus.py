"""A small synchronous publish/subscribe bus: the session emits, observers listen.

Handlers run inline and must be quick (append to a list, put on a queue). Async handlers are scheduled
as tasks so a slow observer can never stall the audio path. A failing handler is logged, never raised.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from getpatter.call.events import CallEvent

log = logging.getLogger("getpatter.bus")

E = TypeVar("E", bound=CallEvent)
Handler = Callable[[Any], Any]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[CallEvent] | None, list[Handler]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event_type: type[E] | None, handler: Callable[[E], Any]) -> Callable[[], None]:
        """Subscribe to one event type (and its subclasses), or to all events with ``None``.

        Returns the function that unsubscribes.
        """
        self._handlers.setdefault(event_type, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(event_type, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def emit(self, event: CallEvent) -> None:
        for klass in type(event).__mro__:
            if klass is object:
                break
            for handler in tuple(self._handlers.get(klass, ())):
                self._call(handler, event)
        for handler in tuple(self._handlers.get(None, ())):
            self._call(handler, event)

    def _call(self, handler: Handler, event: CallEvent) -> None:
        try:
            result = handler(event)
        except Exception:
            log.exception("event handler %r failed on %s", handler, event.type)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("async event handler failed", exc_info=task.exception())

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for async handlers still running (at call end, before the server stops)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
