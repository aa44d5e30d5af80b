"""A small synchronous publish/subscribe bus: the session emits, observers listen.

Handlers run inline and must be quick (append to a list, put on a queue). Async handlers are scheduled
as tasks so a slow observer can never stall the audio path. A failing handler is logged, never raised.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from getpatter.call.events import CallEvent
from getpatter.call.tasks import BackgroundTasks
from getpatter.errors import PatterConfigError

log = logging.getLogger("getpatter.bus")

E = TypeVar("E", bound=CallEvent)
Handler = Callable[[Any], Any]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type[CallEvent] | None, list[Handler]] = {}
        self._tasks = BackgroundTasks(log, level=logging.ERROR, traceback=True)

    def on(self, event_type: type[E] | str | None, handler: Callable[[E], Any]) -> Callable[[], None]:
        """Subscribe to one event type (and its subclasses), to a documented event name (``"call_ended"``,
        ``"transcript_final"``, a ``PatterEventType``; see ``call/event_names.py``), or to all events
        with ``None``. An unknown name raises ``PatterConfigError`` listing the valid ones.

        Returns the function that unsubscribes.
        """
        key: type[CallEvent] | None
        fn: Handler = handler
        if isinstance(event_type, str):
            from getpatter.call.event_names import resolve_event_name

            sub = resolve_event_name(event_type)
            key, accepts = sub.event_type, sub.accepts
            if accepts is not None:

                def fn(event: Any) -> Any:
                    return handler(event) if accepts(event) else None

        elif event_type is None or (isinstance(event_type, type) and issubclass(event_type, CallEvent)):
            key = event_type
        else:
            raise PatterConfigError(
                f"EventBus.on() takes an event class, a documented event name or None, got {event_type!r}. "
                "Fix: bus.on('call_ended', handler) or bus.on(CallEnded, handler)."
            )
        if not callable(handler):
            raise PatterConfigError(f"EventBus.on() handler must be callable, got {type(handler).__name__}")
        self._handlers.setdefault(key, []).append(fn)

        def unsubscribe() -> None:
            handlers = self._handlers.get(key, [])
            if fn in handlers:
                handlers.remove(fn)

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
            self._tasks.spawn(_awaited(result), "async event handler")

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for async handlers still running (at call end, before the server stops)."""
        await self._tasks.wait(timeout)


async def _awaited(result: Awaitable[Any]) -> Any:
    return await result
