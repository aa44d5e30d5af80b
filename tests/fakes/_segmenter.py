"""Energy segmentation on *audio* time, shared by the STT fakes (not by getpatter: own audio code).

Each fake decodes what its client sent with stdlib ``audioop`` and feeds it here; the segmenter says when a
voiced segment starts, keeps going, and ends (``end_silence_ms`` of quiet). Fakes map each segment to the
next scripted utterance. Because it counts samples, not wall time, tests may stream faster than real time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["SegEvent", "Segmenter", "audioop", "decode", "encode", "silence", "tone", "wav_pcm16"]

Kind = Literal["start", "progress", "end"]


def decode(encoding: str, data: bytes) -> bytes:
    """``pcm16`` / ``mulaw`` / ``alaw`` bytes -> PCM16 little-endian."""
    if encoding == "mulaw":
        return audioop.ulaw2lin(data, 2)
    if encoding == "alaw":
        return audioop.alaw2lin(data, 2)
    return data


def encode(encoding: str, pcm: bytes) -> bytes:
    """PCM16 -> ``encoding`` (test helper for carrier-native audio)."""
    if encoding == "mulaw":
        return audioop.lin2ulaw(pcm, 2)
    if encoding == "alaw":
        return audioop.lin2alaw(pcm, 2)
    return pcm


def wav_pcm16(data: bytes) -> tuple[int, int, int, bytes]:
    """Parse a RIFF/WAVE file strictly: ``(channels, sample_width, rate, frames)``; ValueError if bad."""
    import io
    import wave

    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a valid WAV file: {exc}") from exc


@dataclass(frozen=True)
class SegEvent:
    kind: Kind
    t_ms: int  # audio time the event happened at
    start_ms: int  # start of the segment it belongs to


class Segmenter:
    """Feed PCM16 (any chunking); get ``start`` / ``progress`` (every ``progress_ms``) / ``end`` events."""

    def __init__(
        self,
        sample_rate: int,
        *,
        rms_threshold: float = 500.0,
        min_voiced_ms: int = 60,
        end_silence_ms: int = 300,
        progress_ms: int = 100,
        window_ms: int = 10,
    ) -> None:
        self.rate = sample_rate
        self.rms_threshold = rms_threshold
        self.min_voiced_ms = min_voiced_ms
        self.end_silence_ms = end_silence_ms
        self.progress_ms = progress_ms
        self.window_ms = window_ms
        self.window_bytes = sample_rate * window_ms // 1000 * 2
        self.pending = b""
        self.t_ms = 0
        self.voiced_run = 0
        self.silence = 0
        self.in_segment = False
        self.start_ms = 0
        self.last_voiced_ms = 0
        self.last_progress = 0
        self.segments = 0

    def feed(self, pcm: bytes) -> list[SegEvent]:
        data = self.pending + pcm
        out: list[SegEvent] = []
        n = len(data) // self.window_bytes
        for i in range(n):
            window = data[i * self.window_bytes : (i + 1) * self.window_bytes]
            out += self._window(audioop.rms(window, 2))
        self.pending = data[n * self.window_bytes :]
        return out

    def force_end(self) -> SegEvent | None:
        """End the open segment now (a client flush); None when nothing is open."""
        if not self.in_segment:
            return None
        self.in_segment = False
        self.voiced_run = 0
        return SegEvent("end", self.t_ms, self.start_ms)

    def _window(self, rms: float) -> list[SegEvent]:
        self.t_ms += self.window_ms
        now = self.t_ms
        if rms >= self.rms_threshold:
            self.silence = 0
            self.last_voiced_ms = now
            if self.in_segment:
                if now - self.last_progress >= self.progress_ms:
                    self.last_progress = now
                    return [SegEvent("progress", now, self.start_ms)]
                return []
            self.voiced_run += self.window_ms
            if self.voiced_run >= self.min_voiced_ms:
                self.in_segment = True
                self.segments += 1
                self.start_ms = now - self.voiced_run
                self.last_progress = now
                return [SegEvent("start", now, self.start_ms)]
            return []
        self.voiced_run = 0
        self.silence += self.window_ms
        if self.in_segment and self.silence >= self.end_silence_ms:
            self.in_segment = False
            return [SegEvent("end", now, self.start_ms)]
        return []


# -- test audio helpers ----------------------------------------------------------------------------------


def tone(ms: int, rate: int = 16000, amp: float = 8000.0, hz: float = 440.0) -> bytes:
    """A PCM16 sine (voiced for every fake at the default amplitude)."""
    import math
    import struct

    n = rate * ms // 1000
    return struct.pack(f"<{n}h", *(round(amp * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)))


def silence(ms: int, rate: int = 16000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)
