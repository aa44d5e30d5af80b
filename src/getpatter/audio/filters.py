"""Filters for the caller's audio, run before VAD and STT (``phone.agent(audio_filter=...)``).

The shape of a filter (what ``audio_filter=`` accepts)::

    def my_filter(pcm: bytes) -> bytes: ...

``pcm`` is PCM16 little-endian mono at 16 kHz, in whatever block sizes the carrier delivers (often 20 ms,
sometimes more, always a whole number of samples); return audio in the same format. Returning fewer or more
bytes is allowed (the stream simply continues), but a filter that keeps the length keeps timing exact. The
filter runs on the event loop for every block, so keep it cheap (vector operations, no per-sample Python).

A filter that keeps state between blocks must not be shared by concurrent calls: give it a ``fork()``
method returning a fresh filter with the same settings, and every call gets its own ``fork()``. All the
filters here do that. A filter that raises is logged once per call and bypassed (the caller's raw audio
goes on), so a bug cannot make the agent deaf.

Shipped: :class:`HighPassFilter` (removes rumble, hum below the voice band and DC offset),
:class:`NoiseGate` (silences steady low-level background between words) and :class:`FilterChain`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from getpatter.audio._types import PCM16_DTYPE
from getpatter.errors import PatterConfigError

SAMPLE_RATE = 16000

AudioFilterFn = Callable[[bytes], bytes]


@runtime_checkable
class ForkableFilter(Protocol):
    def __call__(self, pcm: bytes) -> bytes: ...

    def fork(self) -> ForkableFilter: ...


def filter_for_call(audio_filter: AudioFilterFn) -> AudioFilterFn:
    """The filter one call should use: its own ``fork()`` when the filter keeps state."""
    fork = getattr(audio_filter, "fork", None)
    return fork() if callable(fork) else audio_filter


class HighPassFilter:
    """Linear-phase high-pass: the signal minus its moving average over one period of ``cutoff_hz``.

    The moving average (a box filter) has its first null at ``cutoff_hz`` and passes everything below it,
    so subtracting it keeps the voice band and removes DC, mains hum and rumble. It delays the audio by half
    a window (5 ms at 100 Hz). Each block costs a handful of vector operations (a running sum).
    """

    __slots__ = ("_delay", "_tail", "_window", "cutoff_hz")

    def __init__(self, cutoff_hz: float = 100.0) -> None:
        if (
            isinstance(cutoff_hz, bool)
            or not isinstance(cutoff_hz, int | float)
            or not 20 <= cutoff_hz <= 1000
        ):
            raise PatterConfigError(f"HighPassFilter(cutoff_hz=...) must be 20-1000 Hz, got {cutoff_hz!r}")
        self.cutoff_hz = float(cutoff_hz)
        window = round(SAMPLE_RATE / self.cutoff_hz)
        self._window = window + (1 - window % 2)  # odd: the centre sample lines up with the average
        self._delay = (self._window - 1) // 2
        self._tail: NDArray[np.int64] = np.zeros(self._window - 1, dtype=np.int64)

    def fork(self) -> HighPassFilter:
        return HighPassFilter(self.cutoff_hz)

    def __call__(self, pcm: bytes) -> bytes:
        if len(pcm) < 2:
            return pcm
        block = np.frombuffer(pcm, dtype=PCM16_DTYPE, count=len(pcm) // 2)
        n, w = block.size, self._window
        x = np.concatenate((self._tail, block.astype(np.int64)))
        sums = np.cumsum(x)
        # sums[i] - sums[i - w] is the sum of the w samples ending at i; for the first output it is sums[w-1].
        box = sums[w - 1 :].copy()
        box[1:] -= sums[: n - 1]
        centre = x[w - 1 - self._delay : w - 1 - self._delay + n]
        out = centre - box // w
        self._tail = x[n:]
        return bytes(np.clip(out, -32768, 32767).astype(PCM16_DTYPE).tobytes())


class NoiseGate:
    """Silences (by ``floor_db``) audio whose level stays under ``threshold_db`` dBFS for ``hold_ms``.

    Speech opens the gate at once; it closes only after ``hold_ms`` of quiet, so word endings and short
    pauses are kept. Gain changes ramp across one block, so the gate never clicks.
    """

    __slots__ = ("_closed_gain", "_gain", "_hold_samples", "_quiet", "floor_db", "hold_ms", "threshold_db")

    def __init__(
        self, threshold_db: float = -45.0, *, hold_ms: float = 250.0, floor_db: float = -40.0
    ) -> None:
        for name, value, low, high in (
            ("threshold_db", threshold_db, -90.0, 0.0),
            ("hold_ms", hold_ms, 0.0, 5000.0),
            ("floor_db", floor_db, -120.0, 0.0),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise PatterConfigError(f"NoiseGate({name}=...) must be {low:g} to {high:g}, got {value!r}")
        self.threshold_db = float(threshold_db)
        self.hold_ms = float(hold_ms)
        self.floor_db = float(floor_db)
        self._hold_samples = int(self.hold_ms * SAMPLE_RATE / 1000)
        self._closed_gain = 10.0 ** (self.floor_db / 20.0)
        self._gain = 1.0
        self._quiet = 0  # samples under the threshold in a row

    def fork(self) -> NoiseGate:
        return NoiseGate(self.threshold_db, hold_ms=self.hold_ms, floor_db=self.floor_db)

    def __call__(self, pcm: bytes) -> bytes:
        if len(pcm) < 2:
            return pcm
        block = np.frombuffer(pcm, dtype=PCM16_DTYPE, count=len(pcm) // 2).astype(np.float32)
        mean_square = float(np.dot(block, block)) / block.size
        level_db = 10.0 * math.log10(mean_square / (32768.0 * 32768.0)) if mean_square > 0 else -120.0
        if level_db >= self.threshold_db:
            self._quiet = 0
        else:
            self._quiet += block.size
        target = 1.0 if self._quiet <= self._hold_samples else self._closed_gain
        start, self._gain = self._gain, target
        if start == target == 1.0:
            return pcm
        block *= np.linspace(start, target, block.size, dtype=np.float32)
        return np.rint(block).astype(PCM16_DTYPE).tobytes()


class FilterChain:
    """Several filters in order (``FilterChain(HighPassFilter(), NoiseGate())``); forks each one."""

    __slots__ = ("filters",)

    def __init__(self, *filters: AudioFilterFn) -> None:
        for f in filters:
            if not callable(f):
                raise PatterConfigError(f"FilterChain: every filter must be callable, got {type(f).__name__}")
        self.filters = filters

    def fork(self) -> FilterChain:
        return FilterChain(*(filter_for_call(f) for f in self.filters))

    def __call__(self, pcm: bytes) -> bytes:
        for f in self.filters:
            pcm = f(pcm)
        return pcm


__all__ = [
    "AudioFilterFn",
    "FilterChain",
    "ForkableFilter",
    "HighPassFilter",
    "NoiseGate",
    "filter_for_call",
]
