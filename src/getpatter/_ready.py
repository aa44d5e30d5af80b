"""``phone.ready`` before ``serve()`` has started running.

The documented pattern is ``asyncio.create_task(phone.serve(agent)); await phone.ready``: ``ready`` is read
before the task has run a single step, so no server (and no runner future) exists yet. :class:`ReadySignal`
hands out one future up front and settles it from whichever ``serve()`` comes next: with the bound port
once it listens, or with the exception ``serve()`` failed with before that.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class ReadySignal:
    """One pending "serving on port N" future per serve() run, available before serve() starts."""

    __slots__ = ("_future",)

    def __init__(self) -> None:
        self._future: asyncio.Future[int] | None = None

    def future(self) -> asyncio.Future[int]:
        """The future the next (or current) ``serve()`` settles; created on first use."""
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        return self._future

    def follow(self, runner_ready: asyncio.Future[int]) -> None:
        """Settle our future like the runner's ``ready`` (called once the runner exists)."""
        pending = self._future
        if pending is None or pending is runner_ready:
            self._future = runner_ready
            return

        def copy(done: asyncio.Future[int]) -> None:
            if pending.done():
                return
            if done.cancelled():
                pending.cancel()
            elif (exc := done.exception()) is not None:
                pending.set_exception(exc)
            else:
                pending.set_result(done.result())

        runner_ready.add_done_callback(copy)
        self._future = runner_ready

    def fail(self, exc: BaseException) -> None:
        """``serve()`` ended before listening: whoever awaits ``ready`` gets its error."""
        pending, self._future = self._future, None
        if pending is None or pending.done():
            return
        if isinstance(exc, Exception):
            pending.set_exception(exc)
        else:
            pending.cancel()

    def reset(self) -> None:
        """``serve()`` returned: the next ``ready`` belongs to the next ``serve()``."""
        self._future = None


class _HasReady(Protocol):
    @property
    def _ready_signal(self) -> ReadySignal: ...


S = TypeVar("S", bound=_HasReady)


def settles_ready(
    serve: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Wrap ``serve()`` so a failure before listening reaches ``await phone.ready`` instead of hanging it."""

    @functools.wraps(serve)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await serve(self, *args, **kwargs)
        except BaseException as exc:
            self._ready_signal.fail(exc)
            raise
        finally:
            self._ready_signal.reset()

    return wrapper


__all__ = ["ReadySignal", "settles_ready"]
