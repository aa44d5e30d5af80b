"""A fixed pure-Python workload that measures how fast this machine runs Python on one core.

Server CPU per call-minute depends on the machine as much as on getpatter: the same tree measured 0.19 s
on one machine and 0.49 s on another ~2.5x slower one. ``bench_calls.py`` runs this workload once, in
its own process before any child starts (the machine idle as far as the benchmark goes), and reports the
server's CPU per call-minute also *normalised to a 1.0 s calibration*::

    normalised = cpu_s_per_call_minute / calibration_s

so a machine twice as slow (calibration twice as long) reports the same normalised figure for the same
code. The workload mixes what the server's per-frame path does in Python: dict lookups and updates,
string formatting, splitting and encoding, bytes slicing and joining, small integer arithmetic. It is
deterministic (a fixed linear congruential sequence, a fixed checksum) and takes ~0.32 s of CPU
(~0.35 s of wall time when quiet) on the 2-core benchmark machine of 2026-12-07.

``calibration_s`` is ``ROUNDS`` x the fastest round's CPU time (``time.process_time``), after one
untimed round, the rounds 20 ms apart: the whole workload's cost with preemption by other processes
filtered out. What it cannot filter is a sustained slow-down: on the 2-vCPU KVM machine of 2026-12-07 a
whole calibration sometimes read 0.60 s instead of 0.31-0.35 s, every round uniformly ~1.9x slower and
CPU time equal to wall time (not preemption: the virtual CPU itself ran slower, with another process
busy on the machine or its host). Read it with its ``loadavg`` (saved with it) and re-run when it is far
from the machine's usual value.
"""

from __future__ import annotations

import time
from typing import Any

#: Identical rounds; the fastest one counts (interruptions by other processes only make rounds slower).
ROUNDS = 16
#: Iterations per round (fixed: changing it changes every calibration figure).
ITERATIONS = 15_000
#: Pause before each round.
GAP_S = 0.02
#: What one round returns; a different value means the workload changed and figures are incomparable.
CHECKSUM = 590_316


def workload(iterations: int = ITERATIONS) -> int:
    """One round: deterministic mixed dict/str/bytes work; returns its checksum."""
    table: dict[str, int] = {}
    frames: list[bytes] = []
    acc = 0
    x = 12345
    for i in range(iterations):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        key = f"call-{x % 1021}"
        table[key] = table.get(key, 0) + (i & 0xFF)
        text = f'{{"event":"media","seq":"{i}","key":"{key}"}}'
        fields = text.split('"')
        acc += len(fields[3]) + (table[key] & 0x3F)
        raw = text.encode()
        frames.append(raw[9:14] + raw[-6:])
        if len(frames) == 64:
            joined = b"".join(frames)
            acc = (acc + joined.count(b"e") + len(joined[::7])) & 0xFFFFFF
            frames.clear()
    for key in sorted(table)[:50]:
        acc ^= table[key] + len(key)
    return acc


def calibrate(rounds: int = ROUNDS, iterations: int = ITERATIONS) -> dict[str, Any]:
    """Run the workload ``rounds`` times; CPU seconds of the whole workload (fastest round x rounds)."""
    times: list[float] = []
    wall0 = time.perf_counter()
    checksum = workload(iterations)  # one untimed round first: caches, allocator, a waking core
    for _ in range(rounds):
        time.sleep(GAP_S)  # spread the rounds: a neighbour's burst is less likely to cover all of them
        t0 = time.process_time()
        checksum = workload(iterations)
        times.append(time.process_time() - t0)
    wall = time.perf_counter() - wall0
    return {
        "calibration_s": round(min(times) * rounds, 4),
        "rounds_cpu_s": [round(t, 4) for t in times],
        "wall_s": round(wall, 4),
        "iterations": iterations,
        "checksum": checksum,
        "checksum_ok": checksum == CHECKSUM if iterations == ITERATIONS else None,
    }


def normalised(cpu_s_per_call_minute: float | None, calibration_s: float) -> float | None:
    """Server CPU per call-minute as a machine whose calibration takes 1.0 s would spend it."""
    if cpu_s_per_call_minute is None or calibration_s <= 0:
        return None
    return round(cpu_s_per_call_minute / calibration_s, 3)


def calibration_line(calibration: dict[str, Any], cpu_normalised: float | None) -> str:
    return (
        f"  calibration            {calibration['calibration_s']} s; server CPU per call-minute"
        f" normalised to a 1.0 s calibration: {cpu_normalised}"
    )
