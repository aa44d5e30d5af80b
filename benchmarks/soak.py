"""Soak: churn short calls through one server for a while and watch its memory.

    python benchmarks/soak.py --minutes 30        # the full soak (documented in RESULTS.md)
    python benchmarks/soak.py --minutes 2         # what CI runs (tests/benchmarks/test_soak.py)

Everything runs in this process on 127.0.0.1: the real server, a fake Twilio that dials in, and the
fake vendors. RSS is sampled from /proc after every batch; growth is measured against the sample taken
after warm-up. Prints a JSON summary (and writes it with --out). Bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.harness import call_harness  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


async def _one_call(h: Any) -> None:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=10)
    await call.wait_agent_quiet(quiet_ms=100, timeout=10)
    await call.hangup()
    await call.wait_closed(timeout=10)
    await call.aclose()
    h.twilio.calls.pop(call.sid, None)


def _forget_fake_records(h: Any) -> None:
    h.ended_total = getattr(h, "ended_total", 0) + len(h.ended)
    h.ended.clear()
    h.transcripts.clear()
    h.deepgram.connections.clear()
    h.llm.requests.clear()
    h.tts.requests.clear()
    h.tts.texts.clear()
    h.twilio.requests.clear()
    h.twilio.webhooks.clear()


async def soak(
    minutes: float, concurrency: int, warmup_batches: int, *, min_calls: int = 0, max_minutes: float = 0.0
) -> dict[str, Any]:
    """Churn calls for ``minutes``, and on until ``min_calls`` were made (a slow machine makes fewer per
    minute), but never past ``max_minutes`` (a hang guard; 0 = ``minutes``)."""
    started = time.monotonic()
    deadline = started + minutes * 60.0
    guard = started + max(max_minutes, minutes) * 60.0
    samples: list[float] = []
    calls = 0
    async with call_harness(first_message="Hi.", ms_per_char=10.0) as h:
        batch = 0
        while (time.monotonic() < deadline or calls < min_calls) and time.monotonic() < guard:
            await asyncio.gather(*(_one_call(h) for _ in range(concurrency)))
            calls += concurrency
            batch += 1
            _forget_fake_records(h)  # the fakes share this process: only the server's memory should count
            gc.collect()
            samples.append(rss_mb())
        await asyncio.sleep(1.0)  # the last batch's on_call_end
        _forget_fake_records(h)
        ended = h.ended_total
    base = samples[min(warmup_batches, len(samples) - 1)] if samples else 0.0
    peak_after = max(samples[warmup_batches:], default=base)
    return {
        "minutes": round((time.monotonic() - started) / 60.0, 2),
        "calls": calls,
        "calls_ended_once": ended == calls,
        "rss_after_warmup_mb": round(base, 1),
        "rss_peak_after_warmup_mb": round(peak_after, 1),
        "rss_final_mb": round(samples[-1], 1) if samples else 0.0,
        "growth_pct": round((samples[-1] - base) / base * 100.0, 2) if samples and base else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=4)
    # The dashboard keeps the last 500 finished calls by design: measure once that buffer is full.
    parser.add_argument("--warmup-batches", type=int, default=150)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = asyncio.run(soak(args.minutes, args.concurrency, args.warmup_batches))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
