"""The CI soak: two minutes of churned calls; RSS must settle (growth < 5 % after warm-up)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


async def test_two_minutes_of_churned_calls_do_not_grow_memory() -> None:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = soak
    spec.loader.exec_module(soak)
    # Two minutes, and on until 700 calls (a loaded machine makes fewer per minute): the warm-up alone fills
    # the dashboard's 500-call history, the rest measures growth. Six minutes is only a hang guard.
    result = await soak.soak(minutes=2.0, concurrency=4, warmup_batches=150, min_calls=700, max_minutes=6.0)
    assert result["calls"] >= 700, f"the soak hit its hang guard: {result}"
    assert result["calls_ended_once"]
    assert result["growth_pct"] < 5.0, result
