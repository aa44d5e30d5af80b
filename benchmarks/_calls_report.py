"""bench_calls.py's printed summary of a run's report."""

from __future__ import annotations

from typing import Any

from _calls_calibrate import calibration_line
from _calls_overload import admission_line
from _calls_vendor_clock import summary_lines


def print_summary(r: dict[str, Any]) -> None:
    def fmt(p: dict[str, Any]) -> str:
        if not p["n"]:
            return "n=0"
        return f"p50 {p['p50']:.1f}  p95 {p['p95']:.1f}  p99 {p['p99']:.1f}  max {p['max']:.1f}  (n={p['n']})"

    s, imp, u = r["server"], r["import_getpatter"], r["underruns"]
    print(f"bench_calls {r['mode']}: {r['command']}")
    answered = f"{r['calls_fully_answered']}/{r['calls']} ({r['answered_pct']}%)"
    print(f"  calls fully answered   {answered}  wall {r['wall_s']} s")
    print(f"  greeting latency ms    {fmt(r['greeting_latency_ms'])}")
    print(f"  greeting SDK-added ms  {fmt(r['greeting_sdk_added_ms'])}")
    print(f"  turn latency ms        {fmt(r['turn_latency_ms'])}")
    print(
        f"  SDK-added latency ms (configured vendor share)  {fmt(r['sdk_added_latency_ms'])}"
        f"   [{r['sdk_added_formula']}]"
    )
    if r.get("sdk_added_measured"):
        for line in summary_lines(r["sdk_added_measured"], fmt):
            print(line)
    print(
        f"  underruns              {u['events']} gaps, {u['gap_ms_total']} ms,"
        f" in {u['calls_with_underruns']} calls"
        f" ({u['agent_audio_s_total']} s of agent audio)"
    )
    print(
        f"  server CPU             {s['cpu_s']} s over {s['call_minutes']} call-min = "
        f"{s['cpu_s_per_call_minute']} s/call-min ({s['cpu_util_pct_of_core']}% of a core)"
    )
    print(calibration_line(r["calibration"], s["cpu_s_per_call_minute_normalised"]))
    print(admission_line(r["admission"]))
    print(
        f"  server RSS MB          idle {s['idle_rss_mb']}  warm {s['warm_rss_mb']}  peak {s['peak_rss_mb']}"
        f"  per call {s['rss_per_call_mb']}"
    )
    print(
        f"  import getpatter       {imp['time_ms']} ms, {imp['rss_mb']} MB RSS"
        f" (bare python {imp['bare_interpreter_rss_mb']} MB)"
    )
    lg = r["load_generator"]
    print(
        f"  load generator CPU     callers {lg['caller_cpu_s']} s, vendors {lg['vendors_cpu_s']} s;"
        f" loadavg {r['loadavg_before']} -> {r['loadavg_after']}"
    )
    for e in r["errors"]:
        print(f"  error: {e}")
