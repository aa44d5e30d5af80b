"""Fixtures of the fleet tests: instances' links to one real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from getpatter.fleet.redis_link import RedisLink
from tests.redis_server import RedisProcess


@pytest.fixture
async def links(redis_server: RedisProcess) -> AsyncIterator[list[RedisLink]]:
    """Two instances' links (prefix ``t``) to the test's redis-server, started, closed after the test."""
    made = [RedisLink(redis_server.url, prefix="t", instance_id=f"instance-{i}") for i in range(2)]
    for link in made:
        await link.start()
    yield made
    for link in made:
        await link.close()
