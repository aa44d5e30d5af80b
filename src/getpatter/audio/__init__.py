"""Audio core: G.711 codecs, stateful resampling, framing, format conversion and voice activity.

Pure and fast (numpy tables, soxr), no I/O. Internal audio is PCM16 little-endian mono at 16 kHz in
20 ms frames; carriers and vendors are converted at each edge with a :class:`FormatConverter`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from getpatter.audio.errors import AudioConfigError
from getpatter.audio.format import (
    ALAW_8K,
    FRAME_MS,
    MULAW_8K,
    PCM16_8K,
    PCM16_16K,
    PCM16_24K,
    AudioFormat,
    Encoding,
)

if TYPE_CHECKING:
    from getpatter.audio.convert import FormatConverter
    from getpatter.audio.frames import (
        DBFS_FLOOR,
        FrameSplitter,
        PcmCarry,
        apply_gain_db,
        pcm16_samples,
        rms_dbfs,
        silence,
    )
    from getpatter.audio.g711 import (
        ALAW_SILENCE,
        MULAW_SILENCE,
        alaw_decode,
        alaw_encode,
        alaw_to_mulaw,
        alaw_to_pcm16,
        mulaw_decode,
        mulaw_encode,
        mulaw_to_alaw,
        mulaw_to_pcm16,
        pcm16_to_alaw,
        pcm16_to_mulaw,
    )
    from getpatter.audio.resample import (
        DEFAULT_QUALITY,
        Quality,
        StatefulResampler,
        StreamResampler,
        create_resampler_8k_to_16k,
        create_resampler_16k_to_8k,
        create_resampler_24k_to_8k,
        create_resampler_24k_to_16k,
    )
    from getpatter.audio.vad import VAD, EnergyVAD, SpeechEnd, SpeechStart, VadEvent, VoiceActivity

# numpy/soxr-backed names load on first use, so importing a format constant stays cheap.
_LAZY: dict[str, str] = {
    "ALAW_SILENCE": "getpatter.audio.g711",
    "DBFS_FLOOR": "getpatter.audio.frames",
    "DEFAULT_QUALITY": "getpatter.audio.resample",
    "EnergyVAD": "getpatter.audio.vad",
    "FormatConverter": "getpatter.audio.convert",
    "FrameSplitter": "getpatter.audio.frames",
    "MULAW_SILENCE": "getpatter.audio.g711",
    "PcmCarry": "getpatter.audio.frames",
    "Quality": "getpatter.audio.resample",
    "SpeechEnd": "getpatter.audio.vad",
    "SpeechStart": "getpatter.audio.vad",
    "StatefulResampler": "getpatter.audio.resample",
    "StreamResampler": "getpatter.audio.resample",
    "VAD": "getpatter.audio.vad",
    "VadEvent": "getpatter.audio.vad",
    "VoiceActivity": "getpatter.audio.vad",
    "alaw_decode": "getpatter.audio.g711",
    "alaw_encode": "getpatter.audio.g711",
    "alaw_to_mulaw": "getpatter.audio.g711",
    "alaw_to_pcm16": "getpatter.audio.g711",
    "apply_gain_db": "getpatter.audio.frames",
    "create_resampler_16k_to_8k": "getpatter.audio.resample",
    "create_resampler_24k_to_16k": "getpatter.audio.resample",
    "create_resampler_24k_to_8k": "getpatter.audio.resample",
    "create_resampler_8k_to_16k": "getpatter.audio.resample",
    "mulaw_decode": "getpatter.audio.g711",
    "mulaw_encode": "getpatter.audio.g711",
    "mulaw_to_alaw": "getpatter.audio.g711",
    "mulaw_to_pcm16": "getpatter.audio.g711",
    "pcm16_samples": "getpatter.audio.frames",
    "pcm16_to_alaw": "getpatter.audio.g711",
    "pcm16_to_mulaw": "getpatter.audio.g711",
    "rms_dbfs": "getpatter.audio.frames",
    "silence": "getpatter.audio.frames",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'getpatter.audio' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ALAW_8K",
    "ALAW_SILENCE",
    "DBFS_FLOOR",
    "DEFAULT_QUALITY",
    "FRAME_MS",
    "MULAW_8K",
    "MULAW_SILENCE",
    "PCM16_8K",
    "PCM16_16K",
    "PCM16_24K",
    "VAD",
    "AudioConfigError",
    "AudioFormat",
    "Encoding",
    "EnergyVAD",
    "FormatConverter",
    "FrameSplitter",
    "PcmCarry",
    "Quality",
    "SpeechEnd",
    "SpeechStart",
    "StatefulResampler",
    "StreamResampler",
    "VadEvent",
    "VoiceActivity",
    "alaw_decode",
    "alaw_encode",
    "alaw_to_mulaw",
    "alaw_to_pcm16",
    "apply_gain_db",
    "create_resampler_8k_to_16k",
    "create_resampler_16k_to_8k",
    "create_resampler_24k_to_8k",
    "create_resampler_24k_to_16k",
    "mulaw_decode",
    "mulaw_encode",
    "mulaw_to_alaw",
    "mulaw_to_pcm16",
    "pcm16_samples",
    "pcm16_to_alaw",
    "pcm16_to_mulaw",
    "rms_dbfs",
    "silence",
]
