"""Background ambience under the agent: ``phone.agent(background_audio=BackgroundAudioPlayer(...))``.

The clip plays for the whole call, at ``volume``, under the agent's speech and in the silences between,
so the line never sounds dead. The playout mixes it into each agent chunk and fills the silences with
ambience-only chunks at the same just-in-time pace, so marks, barge-in ``clear`` and the heard-text
accounting see exactly the agent audio they saw without it (see :class:`BackgroundMixer`).

Sources: a WAV file (PCM16, any rate, mono or stereo), a raw ``.pcm``/``.raw`` file (PCM16 little-endian
mono 16 kHz), or a :class:`BuiltinAudioClip` (synthesized here, nothing is downloaded). The clip is decoded
and checked when the player is built, and resampled once per carrier format.
"""

from __future__ import annotations

import enum
import wave
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from getpatter.audio._types import PCM16_DTYPE, Int16Array
from getpatter.audio.convert import FormatConverter
from getpatter.audio.format import AudioFormat
from getpatter.audio.g711 import alaw_decode, alaw_encode, mulaw_decode, mulaw_encode
from getpatter.errors import PatterConfigError

_RATE = 16000


class BuiltinAudioClip(enum.Enum):
    """Clips generated on the fly (seconds, loopable)."""

    OFFICE_AMBIENCE = "office_ambience"  #: soft room noise with a faint ventilation hum
    HOLD_MUSIC = "hold_music"  #: a gentle repeating arpeggio


def _synthesize(clip: BuiltinAudioClip) -> Int16Array:
    rng = np.random.default_rng(7)  # fixed seed: the same clip every run
    seconds = 8.0
    t = np.arange(int(_RATE * seconds)) / _RATE
    if clip is BuiltinAudioClip.OFFICE_AMBIENCE:
        brown = np.cumsum(rng.standard_normal(t.size))
        brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # keep it from drifting
        signal = brown / np.max(np.abs(brown)) * 0.25 + 0.03 * np.sin(2 * np.pi * 120 * t)
    else:
        notes = (261.63, 329.63, 392.0, 523.25, 392.0, 329.63)  # C major, up and down
        step = t.size // (len(notes) * 4)
        index = np.minimum(np.arange(t.size) // step, len(notes) * 4 - 1) % len(notes)
        freq = np.take(notes, index)
        phase = np.cumsum(2 * np.pi * freq / _RATE)
        envelope = np.exp(-3.0 * ((np.arange(t.size) % step) / _RATE))
        signal = 0.3 * envelope * (np.sin(phase) + 0.3 * np.sin(2 * phase))
    return np.asarray(np.clip(signal * 32767, -32768, 32767), dtype=PCM16_DTYPE)


def _read_source(source: str | Path | BuiltinAudioClip) -> tuple[Int16Array, int]:
    if isinstance(source, BuiltinAudioClip):
        return _synthesize(source), _RATE
    if not isinstance(source, str | Path):
        raise PatterConfigError(
            f"BackgroundAudioPlayer(source=...) must be a file path or a BuiltinAudioClip, got "
            f"{type(source).__name__}"
        )
    path = Path(source)
    if not path.is_file():
        raise PatterConfigError(f"BackgroundAudioPlayer: no such file {str(path)!r}")
    if path.suffix.lower() in (".pcm", ".raw"):
        data = path.read_bytes()
        return np.frombuffer(data[: len(data) - len(data) % 2], dtype=PCM16_DTYPE), _RATE
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise PatterConfigError(
            f"BackgroundAudioPlayer: {str(path)!r} is not a readable WAV file ({exc}). Fix: a PCM16 WAV, "
            "or a raw .pcm file (PCM16 mono 16 kHz)"
        ) from None
    if width != 2:
        raise PatterConfigError(
            f"BackgroundAudioPlayer: {str(path)!r} has {8 * width}-bit samples; convert it to 16-bit PCM"
        )
    samples = np.frombuffer(frames, dtype=PCM16_DTYPE)
    if channels > 1:
        samples = samples[: samples.size - samples.size % channels].reshape(-1, channels).mean(axis=1)
        samples = np.asarray(np.rint(samples), dtype=PCM16_DTYPE)
    return samples, rate


class BackgroundAudioPlayer:
    """An ambience track for every call of an agent. ``volume`` is a linear gain, 0.0-1.0 (0.1 = -20 dB);
    ``loop`` repeats the clip for the whole call (otherwise it plays once, then the line is quiet again)."""

    def __init__(
        self, source: str | Path | BuiltinAudioClip, volume: float = 0.1, loop: bool = False
    ) -> None:
        if isinstance(volume, bool) or not isinstance(volume, int | float) or not 0.0 <= volume <= 1.0:
            raise PatterConfigError(f"BackgroundAudioPlayer(volume=...) must be 0.0-1.0, got {volume!r}")
        if not isinstance(loop, bool):
            raise PatterConfigError(f"BackgroundAudioPlayer(loop=...) must be a bool, got {loop!r}")
        samples, rate = _read_source(source)
        if samples.size == 0:
            raise PatterConfigError("BackgroundAudioPlayer: the clip has no audio")
        self.source = source
        self.volume = float(volume)
        self.loop = loop
        self._samples = samples
        self._rate = rate
        self._by_format: dict[AudioFormat, NDArray[np.int32]] = {}

    def __repr__(self) -> str:
        return f"BackgroundAudioPlayer({self.source!r}, volume={self.volume}, loop={self.loop})"

    def mixer(self, wire: AudioFormat) -> BackgroundMixer:
        """A fresh position in the clip for one call, in the carrier's ``wire`` format."""
        clip = self._by_format.get(wire)
        if clip is None:
            clip = self._prepare(wire.sample_rate)
            self._by_format[wire] = clip
        return BackgroundMixer(clip, wire, loop=self.loop)

    def _prepare(self, rate: int) -> NDArray[np.int32]:
        pcm = self._samples.tobytes()
        if self._rate != rate:
            converter = FormatConverter(AudioFormat("pcm16", self._rate), AudioFormat("pcm16", rate))
            pcm = converter.process(pcm) + converter.flush()
        scaled = np.frombuffer(pcm, dtype=PCM16_DTYPE).astype(np.float32) * np.float32(self.volume)
        return np.asarray(np.rint(scaled), dtype=np.int32)


class BackgroundMixer:
    """One call's ambience: :meth:`mix` adds it under an agent chunk, :meth:`fill` makes an ambience-only
    chunk for the silences. Both take and return audio in the carrier's wire format and advance the clip by
    the chunk's duration, so the ambience runs continuously across speech and silence."""

    __slots__ = ("_clip", "_encoding", "_loop", "_pos", "_width")

    def __init__(self, clip: NDArray[np.int32], wire: AudioFormat, *, loop: bool) -> None:
        if wire.encoding not in ("pcm16", "mulaw", "alaw"):
            raise PatterConfigError(f"background audio cannot be mixed into {wire.encoding} audio")
        self._clip = clip
        self._encoding = wire.encoding
        self._width = 2 if wire.encoding == "pcm16" else 1
        self._loop = loop
        self._pos = 0

    @property
    def finished(self) -> bool:
        """A clip that does not loop has played out: nothing left to fill silences with."""
        return not self._loop and self._pos >= self._clip.size

    def fill(self, nbytes: int) -> bytes:
        """``nbytes`` of ambience only (for the silences between agent speech)."""
        return self._encode(self._take(nbytes // self._width))

    def mix(self, chunk: bytes) -> bytes:
        """``chunk`` of agent audio with the ambience added under it."""
        if self.finished:
            return chunk
        speech = self._decode(chunk)
        mixed = speech.astype(np.int32) + self._take(speech.size)
        return self._encode(mixed)

    def _take(self, n: int) -> NDArray[np.int32]:
        clip, pos = self._clip, self._pos
        self._pos = pos + n
        if self._loop:
            self._pos %= clip.size
            return np.take(clip, np.arange(pos, pos + n), mode="wrap")
        part = clip[pos : pos + n]
        if part.size < n:
            part = np.concatenate((part, np.zeros(n - part.size, dtype=np.int32)))
        return part

    def _decode(self, chunk: bytes) -> Int16Array:
        if self._encoding == "pcm16":
            return np.frombuffer(chunk, dtype=PCM16_DTYPE, count=len(chunk) // 2)
        codes = np.frombuffer(chunk, dtype=np.uint8)
        return mulaw_decode(codes) if self._encoding == "mulaw" else alaw_decode(codes)

    def _encode(self, samples: NDArray[np.int32]) -> bytes:
        pcm = np.clip(samples, -32768, 32767).astype(PCM16_DTYPE)
        if self._encoding == "pcm16":
            return pcm.tobytes()
        codes = mulaw_encode(pcm) if self._encoding == "mulaw" else alaw_encode(pcm)
        return codes.tobytes()


__all__ = ["BackgroundAudioPlayer", "BackgroundMixer", "BuiltinAudioClip"]
