"""How far the event loop falls behind: the signal that a process has more calls than it can serve.

Every call of a process shares one event loop. When the loop has more work than one core can do, every
callback runs late: audio frames leave late, the caller hears gaps, and admitting one more call makes it
worse for all of them. :class:`LoopLagMonitor` measures that cheaply: a task sleeps ``interval_s`` and
notes how much later than asked it woke up (one timer per ``interval_s``, nothing per frame).

The reading :attr:`LoopLagMonitor.lag_s` is the *smallest* lag of the last ``window`` samples: the loop
must have been late at every one of them, so a lone garbage-collection pause or a slow import does not
turn calls away, while a saturated loop (late at every tick) does within about ``window`` ticks.

The clock and the sleep are parameters so tests can drive the monitor tick by tick with no real waiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable

__all__ = ["DEFAULT_INTERVAL_S", "DEFAULT_WINDOW", "LoopLagMonitor"]

DEFAULT_INTERVAL_S = 0.1
DEFAULT_WINDOW = 5


class LoopLagMonitor:
    """Samples the running loop's lag (see the module docstring). Start it from inside the loop it
    watches (:meth:`ensure_started`, idempotent); :meth:`stop` ends it."""

    def __init__(
        self,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        window: int = DEFAULT_WINDOW,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self._samples: collections.deque[float] = collections.deque(maxlen=max(1, window))
        self._clock = clock
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._task: asyncio.Task[None] | None = None
        #: The largest lag seen since start (seconds): diagnostics only, never used to shed.
        self.peak_s = 0.0
        #: Samples taken so far.
        self.samples = 0

    @property
    def lag_s(self) -> float:
        """The sustained lag: the smallest of the recent samples (0 until the window has filled)."""
        if len(self._samples) < (self._samples.maxlen or 1):
            return 0.0
        return min(self._samples)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def note(self, lag_s: float) -> None:
        """Record one sample (what each tick measured)."""
        lag = max(0.0, lag_s)
        self._samples.append(lag)
        self.samples += 1
        self.peak_s = max(self.peak_s, lag)

    def ensure_started(self) -> None:
        """Start sampling the running loop, once; a no-op outside a running loop or when started."""
        if self.running:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._run(loop), name="getpatter-loop-lag")

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        clock = self._clock if self._clock is not None else loop.time
        while True:
            asked = clock() + self.interval_s
            await self._sleep(self.interval_s)
            self.note(clock() - asked)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
