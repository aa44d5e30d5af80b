"""A vendor stream's events in arrival order, then its end: the shape every STT stream and engine session
shares.

The reader task ``put_nowait``s events and, once, a :class:`StreamEnd` (clean, or carrying the error that
killed the stream). The consumer's :meth:`EventChannel.next` returns events in order, raises that error
once, and then raises ``StopAsyncIteration`` for good, which is exactly what ``__anext__`` must do.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from getpatter.errors import PatterError

T = TypeVar("T")


class StreamEnd:
    """The stream is over, cleanly (``error is None``) or not."""

    __slots__ = ("error",)

    def __init__(self, error: PatterError | None = None) -> None:
        self.error = error


class EventChannel(Generic[T]):
    __slots__ = ("_finished", "_queue")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[T | StreamEnd] = asyncio.Queue()
        self._finished = False

    def put_nowait(self, item: T | StreamEnd) -> None:
        self._queue.put_nowait(item)

    @property
    def finished(self) -> bool:
        """True once the consumer has seen the end."""
        return self._finished

    async def next(self) -> T:
        if self._finished:
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, StreamEnd):
            self._finished = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item
