"""Fire each scheduled job once across a fleet: one Redis lease per job and fire time.

For a fire time, every instance tries ``SET {prefix}:sched:{job}:{epoch} <instance> NX PX lease``. The
winner runs the callback, renewing its lease while it runs, then marks the fire ``done`` (kept for a
day, so a late instance does not run it again). The others wait: a ``done`` mark ends the wait; a
lease that expired without one means its instance died, and the first to take the key over runs the
fire. An instance that dies mid-callback can therefore see its fire run twice; never zero times.

While Redis is away the instance runs its fires locally (at least once rather than not at all) — the
link logs that once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from getpatter.fleet.redis_link import RedisLink

_DONE: Final = "done"
_DONE_TTL_MS: Final = 24 * 3600 * 1000
#: Extends our lease only while we still hold it (another instance may have taken an expired one).
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_LOCAL: Final = "__local__"


class RedisFireLeases:
    """A :class:`~getpatter.scheduling.jobs.FireCoordinator` on Redis leases."""

    def __init__(self, link: RedisLink, *, lease_s: float = 30.0, poll_s: float | None = None) -> None:
        self._link = link
        self._lease_ms = max(1, int(lease_s * 1000))
        self._poll_s = poll_s if poll_s is not None else max(0.05, lease_s / 5)

    async def fire(self, job_name: str, when: datetime, run: Callable[[], Awaitable[None]]) -> bool:
        # Milliseconds: fire times of sub-second intervals must not share a lease.
        key = self._link.key("sched", job_name, f"{when.timestamp():.3f}")
        owner = self._link.instance_id
        while True:
            won = await self._link.call(
                lambda r: r.set(key, owner, nx=True, px=self._lease_ms), fallback=_LOCAL
            )
            if won:  # True, or _LOCAL: Redis is away and this instance runs its own fires
                await self._run_leased(key, owner, run, leased=won is not _LOCAL)
                return True
            state = await self._link.call(lambda r: r.get(key), fallback=_LOCAL)
            if state in (_DONE, _LOCAL):
                return False  # ran elsewhere (or Redis went away while another instance held it)
            if state is not None:
                await asyncio.sleep(self._poll_s)
            # None: the lease expired without a ``done`` mark, so its instance died: try to take it over.

    async def _run_leased(
        self, key: str, owner: str, run: Callable[[], Awaitable[None]], *, leased: bool
    ) -> None:
        renewing = asyncio.create_task(self._renew(key, owner)) if leased else None
        try:
            await run()
        finally:
            if renewing is not None:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
            await self._link.write(lambda r: r.set(key, _DONE, px=_DONE_TTL_MS))

    async def _renew(self, key: str, owner: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            await self._link.call(lambda r: r.eval(_RENEW, 1, key, owner, str(self._lease_ms)), fallback=0)
