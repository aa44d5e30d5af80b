"""Fleet-wide admission: at most ``fleet_max_concurrent_calls`` calls across every instance, on Redis.

One sorted set, ``{prefix}:admission:calls``: a member per call held anywhere in the fleet, scored with
the time its lease runs out (Redis's own clock, so instances need not agree on time). Taking a seat is
one Lua script, atomic across the fleet: drop the lapsed leases, then add the call if fewer than the
limit remain. Each instance renews the leases of the calls it holds every third of the lease; an
instance that dies stops renewing, so its calls stop counting within one lease (default 30 s) and the
fleet's capacity comes back by itself. The set itself expires when no instance renews it.

Redis is never a dependency of a call (``redis_link.py``): while it is away, seats are granted (each
process still applies its own ``max_concurrent_calls`` and loop-lag limits) and the held calls are
re-leased when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from getpatter.fleet.redis_link import RedisLink

__all__ = ["DEFAULT_LEASE_S", "RedisSeats"]

log = logging.getLogger("getpatter.fleet")

DEFAULT_LEASE_S: Final = 30.0

#: KEYS[1] the set; ARGV: call id, limit (0 = force), lease ms. 1 = seated, 0 = the fleet is full.
_ACQUIRE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[2])
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease * 2)
return 1
"""
#: KEYS[1] the set; ARGV[1] lease ms, ARGV[2..] the calls this instance holds: their leases start again.
_RENEW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + lease, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], lease * 2)
return #ARGV - 1
"""
#: KEYS[1] the set: the number of live leases.
_COUNT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


class RedisSeats:
    """The fleet's seats as one instance holds them (:class:`~getpatter.server.admission.FleetSeats`).

    :meth:`start` begins renewing; :meth:`close` stops and gives back every seat still held."""

    def __init__(self, link: RedisLink, limit: int, *, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.limit = limit
        self._link = link
        self._key = link.key("admission", "calls")
        self._lease_ms = max(1, int(lease_s * 1000))
        self._held: set[str] = set()
        self._renewing: asyncio.Task[None] | None = None

    @property
    def held(self) -> frozenset[str]:
        """The calls this instance holds a seat for."""
        return frozenset(self._held)

    async def acquire(self, call_id: str, *, force: bool = False) -> bool:
        limit = 0 if force else self.limit
        seated = await self._link.call(
            lambda r: r.eval(_ACQUIRE, 1, self._key, call_id, str(limit), str(self._lease_ms)),
            fallback=1,  # Redis away: this process decides alone
        )
        if int(seated):
            self._held.add(call_id)
            return True
        return False

    async def release(self, call_id: str) -> None:
        self._held.discard(call_id)
        await self._link.write(lambda r: r.zrem(self._key, call_id))

    async def live(self) -> int | None:
        count = await self._link.call(lambda r: r.eval(_COUNT, 1, self._key), fallback=None)
        return int(count) if count is not None else None

    async def renew(self) -> None:
        """Start the lease of every held call again (also re-adds them after Redis was away)."""
        if self._held:
            held = sorted(self._held)
            await self._link.call(
                lambda r: r.eval(_RENEW, 1, self._key, str(self._lease_ms), *held), fallback=0
            )

    async def start(self) -> None:
        if self._renewing is None:
            self._renewing = asyncio.get_running_loop().create_task(
                self._renew_forever(), name="getpatter-fleet-seats"
            )

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                await self.renew()
            except Exception as exc:  # a script error must not end renewals for good
                log.warning("renewing fleet admission leases failed: %s", exc)

    async def close(self) -> None:
        task, self._renewing = self._renewing, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for call_id in sorted(self._held):
            with contextlib.suppress(Exception):
                await self.release(call_id)
