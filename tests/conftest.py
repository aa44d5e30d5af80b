import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisProcess

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# Every Patter posts its calls to a standalone dashboard on 127.0.0.1:8000 by default. Tests must not
# talk to whatever runs there on a shared machine: the tests that want a dashboard name their own.
os.environ.setdefault("PATTER_DASHBOARD_NOTIFY", "0")
# Shedding calls when the event loop lags depends on how loaded the machine running the tests is; tests
# must not. The tests of that shedding turn it on themselves and drive the lag tick by tick.
os.environ.setdefault("PATTER_MAX_LOOP_LAG_MS", "0")


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
