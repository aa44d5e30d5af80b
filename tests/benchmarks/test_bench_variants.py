"""bench_calls.py's issue-19 options in their short form: the WebSocket TTS variant, the admission cap,
and the CPU calibration.

Counts and report structure only, never wall-clock figures. The capped run turns lag shedding off
(``--max-loop-lag-ms 0``) so that a busy CI machine cannot refuse one of the first calls for loop lag and
change which calls the cap admits: the test is about the cap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_calls.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

from _measured import check_measured_share  # noqa: E402

import _calls_calibrate  # noqa: E402  (a sibling of bench_calls.py, not a package)
import _calls_vendor_clock  # noqa: E402


def _run(tmp_path: Path, name: str, *args: str) -> tuple[dict[str, Any], str]:
    argv = ["--mode", "pipeline", "--short", "--name", name, "--out-dir", str(tmp_path), *args]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *argv], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report: dict[str, Any] = json.loads((tmp_path / f"{name}.json").read_text())
    return report, proc.stdout


def test_ws_tts_variant_answers_its_calls(tmp_path: Path) -> None:
    report, stdout = _run(tmp_path, "ws", "--tts", "ws")
    assert report["config"]["tts"] == "ws"
    assert report["calls"] == 3 and report["calls_fully_answered"] == 3
    assert report["admission"]["admitted"] == 3 and report["admission"]["failed"] == 0
    # The vendor's share subtracted is the same first-audio delay as the HTTP variant's.
    assert "tts_delay(50, ws)" in report["sdk_added_formula"]
    # The WebSocket fake stamps its generations too: every turn is tied to its vendors' measured share.
    check_measured_share(report)
    assert report["sdk_added_latency_ms"]["n"] == 3
    assert "tts_delay(50, ws)" in stdout


def test_max_calls_admits_the_cap_whole_and_refuses_the_rest_cleanly(tmp_path: Path) -> None:
    report, stdout = _run(tmp_path, "cap", "--calls", "4", "--max-calls", "2", "--max-loop-lag-ms", "0")
    a = report["admission"]
    assert report["config"]["max_calls"] == 2 and a["max_calls"] == 2
    assert a["max_loop_lag_ms"] is None  # lag shedding off, as asked
    assert a["admitted"] == 2 and a["admitted_fully_answered"] == 2
    assert a["refused_clean"] == 2 and a["refused_twiml_reasons"] == {"busy": 2}
    assert a["refused_by_server"] == {"capacity": 2, "loop_lag": 0, "fleet_capacity": 0}
    assert a["failed"] == 0
    assert report["calls_fully_answered"] == 2
    assert "refused cleanly 2" in stdout


def test_calibration_workload_is_fixed_and_deterministic() -> None:
    assert _calls_calibrate.workload() == _calls_calibrate.CHECKSUM
    small = _calls_calibrate.calibrate(rounds=2, iterations=500)
    assert len(small["rounds_cpu_s"]) == 2 and small["checksum"] == _calls_calibrate.workload(500)
    assert small["checksum_ok"] is None  # not the fixed size: not comparable
    assert _calls_calibrate.normalised(0.9, 0.45) == 2.0
    assert _calls_calibrate.normalised(None, 0.45) is None


def test_reply_tag_survives_the_tts_request_and_changes_no_length() -> None:
    reply = "Sure, we are open from nine to five on weekdays. Is there anything else I can help you with?"
    first = reply[: reply.index(".") + 1]
    for number in (0, 1, 5, 1234, 2**20 + 3):
        tagged = _calls_vendor_clock.tag_reply(reply, number)
        assert len(tagged) == len(reply) and tagged.lower() == reply.lower()
        assert tagged[0] == "S" and tagged[len(first) :] == reply[len(first) :]  # only the first sentence
        assert _calls_vendor_clock.read_tag(reply, tagged[: len(first)]) == number
    assert _calls_vendor_clock.read_tag(reply, "Hello, thanks for calling.") is None  # the greeting
    assert _calls_vendor_clock.tag_reply(reply, None) == reply
    assert _calls_vendor_clock.utterance_number("When are you open, number 17?") == 17
