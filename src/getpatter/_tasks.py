"""Task ownership for the call layer and the server.

* :class:`BackgroundTasks`: the one way to start fire-and-forget work. The event loop keeps only weak
  references to tasks, so a task nobody holds can be garbage-collected mid-flight; the set here holds each
  one until it finishes, logs a failure instead of leaving it unretrieved, and can be waited for (at call
  end, at shutdown) or cancelled.
* :func:`cancel_and_wait`: stopping a task for sure. On Python 3.11 ``asyncio.wait_for`` (used inside some
  libraries) can swallow a cancellation that races with its result; a reply that ignores its cancel would
  keep the call busy forever. So: cancel, wait a moment, and cancel again until the task is really done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

log = logging.getLogger("getpatter.tasks")

T = TypeVar("T")


class BackgroundTasks:
    """A set of fire-and-forget tasks; a task that raises is logged ``"<what> failed: <error>"`` on
    ``logger`` at ``level`` (with the traceback when ``traceback`` is set) and never re-raised."""

    def __init__(
        self, logger: logging.Logger = log, *, level: int = logging.WARNING, traceback: bool = False
    ) -> None:
        self._tasks: dict[asyncio.Task[Any], str] = {}
        self._log = logger
        self._level = level
        self._traceback = traceback

    def spawn(self, coro: Coroutine[Any, Any, T], what: str) -> asyncio.Task[T]:
        """Start ``coro`` now and hold it until it ends. ``what`` names it in the task and in the log."""
        task = asyncio.get_running_loop().create_task(coro, name=what[:60])
        self._tasks[task] = what
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        what = self._tasks.pop(task, "background task")
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._log.log(self._level, "%s failed: %s", what, exc, exc_info=exc if self._traceback else None)

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(tuple(self._tasks))

    async def wait(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for the tasks running now (they keep running after a timeout)."""
        if self._tasks:
            await asyncio.wait(tuple(self._tasks), timeout=timeout)

    async def cancel(self) -> None:
        """Cancel every task and wait until each has really stopped."""
        for task in tuple(self._tasks):
            await cancel_and_wait(task)


async def cancel_and_wait(task: asyncio.Task[Any] | None, *, retry_s: float = 1.0) -> None:
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
    if task is not None and not task.cancelled() and task.exception() is not None:
        log.debug("cancelled task had failed", exc_info=task.exception())
