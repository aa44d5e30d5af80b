"""The checks on bench_calls.py's SDK-added figure from the vendors' measured share (both TTS variants).

Consistency only, never wall-clock bounds: a paced fake is never early, and what it took is subtracted.
"""

from __future__ import annotations

from typing import Any

PERCENTILE_KEYS = {"n", "p50", "p95", "p99", "max", "mean"}


def check_measured_share(report: dict[str, Any]) -> None:
    """The SDK-added figure from the vendors' measured share: every answered turn attributed to its vendor
    events, each vendor's share at least its configured delay, and the remainder within the turn."""
    m = report["sdk_added_measured"]
    turns = report["turn_latency_ms"]
    assert m["turns"] == turns["n"] and m["turns_attributed"] == turns["n"] >= 1
    for stage in ("stt", "llm", "tts"):
        assert m["vendor_share_ms"][stage]["n"] == turns["n"]
        assert m["vendor_share_ms"][stage].keys() >= PERCENTILE_KEYS
        # A paced fake can be late, never early (1 ms for the loop's clock resolution).
        assert m["vendor_overshoot_ms"][stage]["min"] >= -1.0
    for key in ("p50", "max"):
        assert m["sdk_added_ms"][key] <= turns[key]
        # measured vendor share >= configured share, so the measured remainder is not above the old one
        assert m["sdk_added_ms"][key] <= report["sdk_added_latency_ms"][key] + 1.0 * len(m["vendor_share_ms"])
    assert m["sdk_gaps_ms"].keys() == {"stt_to_llm", "llm_to_tts", "audio_in_and_out"}
