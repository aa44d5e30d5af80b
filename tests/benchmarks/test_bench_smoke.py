"""The call benchmark must keep running: ``bench_calls.py --short`` in both modes writes its JSON.

Only that it ran and the report has its keys is checked; wall-clock figures are never asserted here
(the machine may be busy). The benchmark itself bounds its time (``--short`` caps it at 60 s of calls).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _measured import PERCENTILE_KEYS, check_measured_share

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_calls.py"

TOP_KEYS = {
    "name",
    "mode",
    "command",
    "config",
    "calls",
    "calls_completed",
    "calls_fully_answered",
    "answered_pct",
    "wall_s",
    "greeting_latency_ms",
    "greeting_sdk_added_ms",
    "turn_latency_ms",
    "sdk_added_latency_ms",
    "sdk_added_formula",
    "underruns",
    "server",
    "import_getpatter",
    "load_generator",
    "errors",
    "calibration",
    "admission",
    "sdk_added_measured",
}
SERVER_KEYS = {
    "cpu_s",
    "call_minutes",
    "cpu_s_per_call_minute",
    "cpu_s_per_call_minute_normalised",
    "idle_rss_mb",
    "warm_rss_mb",
    "peak_rss_mb",
    "rss_per_call_mb",
}


# One mode on the stock asyncio loop, the other on uvloop everywhere (the ``fast`` extra).
@pytest.mark.parametrize(("mode", "loop"), [("realtime", "all"), ("pipeline", "none")])
def test_bench_calls_short_runs_and_writes_its_report(mode: str, loop: str, tmp_path: Path) -> None:
    if loop != "none":
        pytest.importorskip("uvloop", reason="needs the 'fast' extra")
    name = f"smoke_{mode}"
    args = ["--mode", mode, "--short", "--uvloop", loop, "--name", name, "--out-dir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / f"{name}.json").read_text())
    assert report.keys() >= TOP_KEYS
    assert report["mode"] == mode and report["config"]["uvloop"] == loop
    for key in ("greeting_latency_ms", "turn_latency_ms", "sdk_added_latency_ms"):
        assert report[key].keys() >= PERCENTILE_KEYS
    assert report["server"].keys() >= SERVER_KEYS
    assert {"time_ms", "rss_mb"} <= report["import_getpatter"].keys()
    assert {"events", "gap_ms_total", "calls_with_underruns"} <= report["underruns"].keys()
    assert report["calls"] >= 1 and report["calls_completed"] >= 1
    assert report["calibration"]["checksum_ok"] is True and report["calibration"]["calibration_s"] > 0
    assert report["admission"]["max_calls"] is None  # no cap unless --max-calls
    assert "SDK-added latency" in proc.stdout and "normalised to a 1.0 s calibration" in proc.stdout
    if mode == "pipeline":
        check_measured_share(report)
        assert "SDK-added (measured vendor share)" in proc.stdout
    else:
        assert report["sdk_added_measured"] is None  # the fakes' stamps are a pipeline feature
