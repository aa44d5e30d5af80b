"""Offline providers for the no-keys default (extra ``local``): nothing here downloads anything.

The speech models ship inside wheels (see ``shared/local-stack.md``): Whisper tiny.en for STT, SVOX Pico
for TTS, Silero for VAD. ``ScriptedLLM`` is a deterministic rule-based agent: no small local LLM follows a
system prompt well enough for a demo.
"""

from __future__ import annotations

import os

# onnxruntime >= 1.29 phones home unless this is set before it initialises (local-stack.md).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from getpatter.local.scripted import Rule, ScriptedLLM
from getpatter.local.stt import LocalSTT
from getpatter.local.tts import LocalTTS
from getpatter.local.vad import SileroVAD

__all__ = ["LocalSTT", "LocalTTS", "PiperTTS", "Rule", "ScriptedLLM", "SileroVAD"]


def __getattr__(name: str) -> object:
    if name == "PiperTTS":  # extra "piper": imported only when asked for
        from getpatter.local.piper import PiperTTS

        return PiperTTS
    raise AttributeError(f"module 'getpatter.local' has no attribute {name!r}")
