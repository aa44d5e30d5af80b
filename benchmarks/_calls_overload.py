"""bench_calls.py's admission figures: which calls the server took, which it refused cleanly, which failed.

With ``--max-calls C`` the server is built with ``max_concurrent_calls=C`` (``server/admission.py``); a
call past the cap is refused on the carrier's terms, the voice webhook answering ``<Reject
reason="busy"/>`` (Twilio never answers it; the simulated caller opens no media socket). Lag shedding
stays at what users run (``PATTER_MAX_LOOP_LAG_MS`` unset: 200 ms of sustained event-loop lag) unless
``--max-loop-lag-ms`` sets it (``0`` = off). Every run reports, per call:

* **admitted**: the webhook answered ``<Connect><Stream>``; of those, **fully answered** (greeting heard,
  every turn answered, caller hung up, no socket error);
* **refused_clean**: the webhook answered a ``<Reject>`` Twilio accepts as the first verb (checked by
  ``tests.fakes.twilio.parse_reject``), no socket opened;
* **failed**: neither fully answered nor refused cleanly (rang without an answer, webhook error,
  answered but cut short, socket error, or still running at the ``--max-s`` budget);
* **gaps among admitted**: the underruns of the admitted calls;
* **refused by the server**, per cause (``capacity`` / ``loop_lag`` / ``fleet_capacity``), from the
  server's ``/health`` before and after the measured calls (the warm-up call is not counted).
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

REASONS = ("capacity", "loop_lag", "fleet_capacity")


async def health(http: Any, server_url: str) -> dict[str, Any]:
    """``/health``'s body (200 while admitting, 503 with the same body while refusing); ``{"error": ...}``
    when the server does not answer (the run's other figures are still reported)."""
    try:
        response = await http.get(server_url + "/health")
        body: dict[str, Any] = response.json()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"[:200]}
    return body


async def wait_idle(http: Any, server_url: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """``/health`` once the server holds no call (the warm-up call's ticket released), or at the timeout:
    with a small cap, a ticket still held would refuse one call too many."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = await health(http, server_url)
        idle = body.get("live_calls", 0) == 0 and body.get("reserved_calls", 0) == 0
        if idle or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


def admission_report(
    results: list[Any], n: int, turns: int, before: dict[str, Any], after: dict[str, Any]
) -> dict[str, Any]:
    admitted = [r for r in results if r.admitted]
    refused = [r for r in results if r.refused]
    answered = sum(1 for r in results if r.fully_answered(turns))
    was = before.get("refused_calls", {})
    now = after.get("refused_calls", {})
    return {
        "max_calls": after.get("capacity"),
        "max_loop_lag_ms": after.get("max_loop_lag_ms"),  # None: lag shedding off
        "admitted": len(admitted),
        "admitted_fully_answered": sum(1 for r in admitted if r.fully_answered(turns)),
        "refused_clean": len(refused),
        "refused_twiml_reasons": dict(collections.Counter(r.refused for r in refused)),
        "refused_by_server": {k: now.get(k, 0) - was.get(k, 0) for k in REASONS},
        "failed": n - answered - len(refused),
        "underruns_among_admitted": {
            "events": sum(r.underrun_events for r in admitted),
            "gap_ms_total": round(sum(r.underrun_ms for r in admitted), 1),
            "calls_with_underruns": sum(1 for r in admitted if r.underrun_events),
        },
        "loop_lag_ms_after": after.get("loop_lag_ms"),
    }


def admission_line(a: dict[str, Any]) -> str:
    cap = a["max_calls"] or "none"
    lag = f"{a['max_loop_lag_ms']} ms" if a["max_loop_lag_ms"] else "off"
    by = ", ".join(f"{k} {v}" for k, v in a["refused_by_server"].items() if v) or "none"
    u = a["underruns_among_admitted"]
    return (
        f"  admission              cap {cap}, lag shedding {lag}: admitted {a['admitted']}"
        f" ({a['admitted_fully_answered']} fully answered), refused cleanly {a['refused_clean']}"
        f" (server: {by}), failed {a['failed']}; gaps among admitted {u['events']} / {u['gap_ms_total']} ms"
    )
