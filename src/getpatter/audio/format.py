"""Describes audio on a wire: encoding + sample rate. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["pcm16", "mulaw", "alaw"]


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """``pcm16`` is signed 16-bit little-endian mono; ``mulaw``/``alaw`` are G.711, one byte a sample."""

    encoding: Encoding
    sample_rate: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding == "pcm16" else 1

    def bytes_for_ms(self, ms: float) -> int:
        return int(self.sample_rate * ms / 1000) * self.bytes_per_sample

    def duration_ms(self, n_bytes: int) -> float:
        return n_bytes / (self.bytes_per_sample * self.sample_rate) * 1000.0


#: The canonical internal format: every STT, VAD and the pipeline see this.
PCM16_16K = AudioFormat("pcm16", 16000)
PCM16_8K = AudioFormat("pcm16", 8000)
PCM16_24K = AudioFormat("pcm16", 24000)
MULAW_8K = AudioFormat("mulaw", 8000)
ALAW_8K = AudioFormat("alaw", 8000)

#: Internal frame length.
FRAME_MS = 20
