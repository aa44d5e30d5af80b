"""``LocalTTS``: SVOX Pico (py-nanotts), 16 kHz, synthesized in a worker thread (about 25 ms a sentence)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from getpatter.audio.format import PCM16_16K
from getpatter.audio.frames import apply_gain_db
from getpatter.local._deps import require
from getpatter.tts.base import TTS

_CHUNK = 3200  # 100 ms: small enough to start playing at once
_engine: Any = None
_engine_lock = threading.Lock()


def _speak(text: str, voice: str) -> bytes:
    global _engine
    with _engine_lock:  # the Pico engine is not re-entrant
        if _engine is None:
            _engine = require("py_nanotts", "py-nanotts").NanoTTS()
        pcm: bytes = _engine.speak(text, voice=voice)
    return pcm


class LocalTTS(TTS):
    provider_id = "local_pico"
    audio_format = PCM16_16K

    def __init__(self, *, voice: str = "en-US", gain_db: float = -3.0) -> None:
        self.model = "pico"
        self.voice = voice
        self.gain_db = gain_db  # Pico peaks at 0 dBFS; a little headroom avoids clipping after resampling

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        pcm = await asyncio.to_thread(_speak, text, self.voice)
        if self.gain_db:
            pcm = apply_gain_db(pcm, self.gain_db)
        for start in range(0, len(pcm), _CHUNK):
            yield pcm[start : start + _CHUNK]
