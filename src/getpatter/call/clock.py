"""The call layer's time source: when is now, and waiting until later.

Pacing (``Playout``), turn timing (``TurnAssembler``), retries (``Speaker``, ``ReplySource``, the STT link)
and the call watchdog (``CallSession``) read and wait on a :class:`Clock` instead of ``time.monotonic`` and
``asyncio.sleep`` directly. In production it is :data:`SYSTEM_CLOCK`, exactly those two; tests pass a
virtual clock (``tests/unit/_virtual_clock.py``) that they move forward by hand, so behaviour that spans
seconds of call time is checked deterministically in milliseconds.
"""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Monotonic seconds and sleeping on the event loop (the real ones)."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` seconds have passed (False)."""
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True


SYSTEM_CLOCK = Clock()
