"""Per-frame cost of the audio core on the hot paths of a call.

Run: ``python benchmarks/bench_audio.py [--seconds 10]``. Prints microseconds per 20 ms frame (mean and
p99 over a stream of frames), plus how many concurrent call-legs one core could carry at that cost.
Each path runs over a real stream (tone + noise) through one stateful converter, as a call would.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from getpatter.audio import (
    MULAW_8K,
    PCM16_16K,
    PCM16_24K,
    FormatConverter,
    VoiceActivity,
    pcm16_to_mulaw,
)


def _signal(rate: int, seconds: float) -> bytes:
    rng = np.random.default_rng(0)
    n = np.arange(int(rate * seconds))
    wave = 6000 * np.sin(2 * np.pi * 440 * n / rate) + rng.standard_normal(n.size) * 800
    return np.clip(np.rint(wave), -32768, 32767).astype("<i2").tobytes()


def _frames(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data) - size + 1, size)]


def _measure(step: Callable[[bytes], object], frames: list[bytes]) -> tuple[float, float]:
    for frame in frames[:50]:  # warm up caches and soxr's first burst
        step(frame)
    timings = np.empty(len(frames))
    clock = time.perf_counter_ns
    for i, frame in enumerate(frames):
        start = clock()
        step(frame)
        timings[i] = clock() - start
    return float(timings.mean() / 1000), float(np.percentile(timings, 99) / 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="stream length per path (default 10)")
    args = parser.parse_args()
    seconds: float = args.seconds

    mulaw_8k = pcm16_to_mulaw(_signal(8000, seconds))
    pcm_16k = _signal(16000, seconds)
    pcm_24k = _signal(24000, seconds)
    activity = VoiceActivity()

    paths: list[tuple[str, Callable[[bytes], object], list[bytes]]] = [
        (
            "(a) mu-law 8k -> PCM16 16k (inbound)",
            FormatConverter(MULAW_8K, PCM16_16K).process,
            _frames(mulaw_8k, 160),
        ),
        (
            "(b) PCM16 16k -> mu-law 8k (outbound)",
            FormatConverter(PCM16_16K, MULAW_8K).process,
            _frames(pcm_16k, 640),
        ),
        (
            "(c) PCM16 24k -> mu-law 8k (TTS->Twilio)",
            FormatConverter(PCM16_24K, MULAW_8K).process,
            _frames(pcm_24k, 960),
        ),
        ("(d) mu-law 8k pass-through", FormatConverter(MULAW_8K, MULAW_8K).process, _frames(mulaw_8k, 160)),
        ("(e) EnergyVAD + VoiceActivity, 16k", activity.feed, _frames(pcm_16k, 640)),
    ]
    print(f"{'path':44} {'mean us':>9} {'p99 us':>9} {'legs/core':>10}   ({seconds:g} s of 20 ms frames)")
    for name, step, frames in paths:
        mean_us, p99_us = _measure(step, frames)
        legs = 20_000 / mean_us if mean_us > 0 else float("inf")
        print(f"{name:44} {mean_us:9.2f} {p99_us:9.2f} {legs:10.0f}")


if __name__ == "__main__":
    main()
