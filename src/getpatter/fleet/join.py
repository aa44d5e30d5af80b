"""Joining a fleet: what ``Patter(redis_url=...)`` / ``PATTER_REDIS_URL`` switches on while ``serve()`` runs.

Shared: scheduled jobs (each fire time runs on one instance; :mod:`.schedules`), carrier callbacks of
placed calls (handled by the instance that placed the call; :mod:`.forward`, :mod:`.media_relay`), the
dashboard (:mod:`.dashboard_mirror`) and, with ``fleet_max_concurrent_calls``, admission
(:mod:`.admission`). :mod:`.member` joins them while a server serves.

A fleet instance's scheduled jobs fire only while it is a member (from ``serve()`` connecting to Redis
until it stops): jobs are usually scheduled before ``serve()``, and a fire decided alone in that moment
would run twice across the fleet. A fire that waited is still decided by its lease, so a fire time
another instance already ran is skipped.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from getpatter.fleet.redis_link import DEFAULT_PREFIX, validate_prefix, validate_redis_url

if TYPE_CHECKING:
    from getpatter.fleet.schedules import RedisFireLeases

ENV_URL = "PATTER_REDIS_URL"
ENV_PREFIX = "PATTER_REDIS_PREFIX"


def resolve_fleet(redis_url: object, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(url, prefix)`` from ``redis_url=`` (else ``PATTER_REDIS_URL``), checked at construction; ``None``
    when this instance runs on its own."""
    environ = os.environ if env is None else env
    if redis_url is None:
        redis_url = (environ.get(ENV_URL) or "").strip() or None
        name = ENV_URL
    else:
        name = "redis_url"
    if redis_url is None:
        return None
    url = validate_redis_url(redis_url, name=name)
    prefix = validate_prefix((environ.get(ENV_PREFIX) or "").strip() or DEFAULT_PREFIX)
    return url, prefix


class FleetFires:
    """The default scheduler's coordinator for a fleet instance: fires wait for membership, then a lease."""

    def __init__(self) -> None:
        self._leases: RedisFireLeases | None = None
        self._member = asyncio.Event()

    def join(self, leases: RedisFireLeases) -> None:
        self._leases = leases
        self._member.set()

    def leave(self) -> None:
        self._member.clear()
        self._leases = None

    async def fire(self, job_name: str, when: datetime, run: Callable[[], Awaitable[None]]) -> bool:
        while self._leases is None:
            await self._member.wait()
        return await self._leases.fire(job_name, when, run)


def install(fleet: tuple[str, str] | None) -> FleetFires | None:
    """At construction: jobs of the default scheduler wait for this instance to join its fleet."""
    if fleet is None:
        return None
    from getpatter.scheduling import default_scheduler

    scheduler = default_scheduler()
    if not isinstance(scheduler.coordinator, FleetFires):
        scheduler.coordinator = FleetFires()
    coordinator = scheduler.coordinator
    assert isinstance(coordinator, FleetFires)
    return coordinator
