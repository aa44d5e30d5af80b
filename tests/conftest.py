import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisProcess

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A real redis-server on a free loopback port, stopped after the test."""
    try:
        server = RedisProcess(tmp_path)
    except FileNotFoundError as exc:
        if os.environ.get("CI"):  # .ci/run installs it: a missing binary there is a broken CI, not a skip
            raise
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()
