"""A virtual :class:`~getpatter.call.clock.Clock` for call-layer unit tests.

Time stands still until the test moves it with :meth:`VirtualClock.advance`; sleepers then wake in
deadline order, each seeing ``now()`` equal to its deadline, and the loop is allowed to run everything
that became ready before the next one wakes. Seconds of call time take microseconds, and the order of
events is the same on every run (no wall clock anywhere).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from getpatter.call.clock import Clock

#: Loop iterations granted after each wake-up: enough for the chains of awaits in the call layer
#: (pace -> send -> mark) with everything in memory.
_SETTLE_ROUNDS = 20
#: Like a real clock, a sleep always lets some time pass: a sleep shorter than the float resolution
#: of ``now`` would otherwise wake at the same instant, forever.
_TICK_S = 1e-6
#: Wake-ups one ``advance`` may process before it calls the code under test a busy loop.
_MAX_WAKEUPS = 100_000


class VirtualClock(Clock):
    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._ids = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._now + max(seconds, _TICK_S), next(self._ids), wake))
        await wake  # a cancelled sleeper cancels ``wake``; advance() skips it

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        sleeper = asyncio.ensure_future(self.sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
        return event.is_set()

    @property
    def sleepers(self) -> int:
        """Sleeps still pending (cancelled ones excluded)."""
        return sum(1 for *_, wake in self._timers if not wake.done())

    async def settle(self) -> None:
        """Let every task that can run without time passing run."""
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due on the way, in order."""
        target = self._now + seconds
        await self.settle()
        wakeups = 0
        while self._timers and self._timers[0][0] <= target:
            wakeups += 1
            if wakeups > _MAX_WAKEUPS:
                raise RuntimeError("virtual time cannot advance: the code under test sleeps in a busy loop")
            when, _, wake = heapq.heappop(self._timers)
            if wake.done():
                continue
            self._now = max(self._now, when)
            wake.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()
