"""Audio core: G.711 codecs, stateful resampling, framing, format conversion and voice activity.

Pure and fast (numpy tables, soxr), no I/O. Internal audio is PCM16 little-endian mono at 16 kHz in
20 ms frames; carriers and vendors are converted at each edge with a :class:`FormatConverter`.
"""

from getpatter.audio.convert import FormatConverter
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
