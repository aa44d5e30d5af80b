"""Byte-stream framing and small level helpers for PCM16 (little-endian, mono).

Network chunks do not respect sample or frame boundaries: a WebSocket message can end in the middle of a
sample, and TTS vendors send whatever size they like. :class:`PcmCarry` turns such a stream into whole
samples, carrying the odd byte into the next chunk (never dropping or padding it mid-stream), and
:class:`FrameSplitter` re-frames any stream into fixed-size frames (e.g. 20 ms for pacing).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from getpatter.audio._types import PCM16_DTYPE, BytesLike, Int16Array
from getpatter.audio.errors import AudioConfigError
from getpatter.audio.format import AudioFormat
from getpatter.audio.g711 import ALAW_SILENCE, MULAW_SILENCE

#: What :func:`rms_dbfs` reports for digital silence or an empty buffer. One LSB of RMS is -90.3 dBFS,
#: so any non-silent PCM16 signal measures above this.
DBFS_FLOOR: Final = -100.0

_FULL_SCALE: Final = 32768.0


class PcmCarry:
    """Joins a chunked byte stream into whole samples of ``sample_width`` bytes.

    ``push`` returns every complete sample received so far and keeps the remainder (at most
    ``sample_width - 1`` bytes) for the next chunk. A chunk that needs no carry comes back as the same
    ``bytes`` object, so the common case costs nothing.
    """

    __slots__ = ("_pending", "_width")

    def __init__(self, sample_width: int = 2) -> None:
        if sample_width < 1:
            raise AudioConfigError(f"sample_width must be >= 1 (got {sample_width}); PCM16 uses 2.")
        self._width = sample_width
        self._pending = b""

    @property
    def pending(self) -> int:
        """Bytes held back because they do not yet make a whole sample."""
        return len(self._pending)

    def push(self, chunk: BytesLike) -> bytes:
        """Add ``chunk`` and return the whole samples now available (possibly ``b""``)."""
        data = self._pending + chunk if self._pending else chunk
        extra = len(data) % self._width
        if extra == 0:
            self._pending = b""
            return data if isinstance(data, bytes) else bytes(data)
        self._pending = bytes(data[-extra:])
        return bytes(data[:-extra])

    def reset(self) -> None:
        """Forget any carried partial sample (e.g. after a barge-in or at the end of a stream)."""
        self._pending = b""


class FrameSplitter:
    """Re-frames a stream of arbitrary chunks into frames of exactly ``frame_bytes`` bytes.

    ``push`` returns the complete frames, oldest first, and keeps the rest. ``flush`` hands back the
    remainder, optionally padded to a whole frame, and empties the splitter.
    """

    __slots__ = ("_buf", "_frame_bytes")

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes < 1:
            raise AudioConfigError(
                f"frame_bytes must be >= 1 (got {frame_bytes}); e.g. AudioFormat.bytes_for_ms(20)."
            )
        self._frame_bytes = frame_bytes
        self._buf = bytearray()

    @property
    def frame_bytes(self) -> int:
        return self._frame_bytes

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet fill a frame."""
        return len(self._buf)

    def push(self, chunk: BytesLike) -> list[bytes]:
        """Add ``chunk``; return every frame it completes (an empty list if none)."""
        size = self._frame_bytes
        if not self._buf and len(chunk) == size:
            return [chunk if isinstance(chunk, bytes) else bytes(chunk)]
        self._buf += chunk
        count = len(self._buf) // size
        if count == 0:
            return []
        buf = self._buf
        frames = [bytes(buf[i * size : (i + 1) * size]) for i in range(count)]
        del buf[: count * size]
        return frames

    def flush(self, pad: bytes | None = None) -> bytes:
        """Return the buffered remainder and empty the splitter.

        With ``pad`` (e.g. ``b"\\x00\\x00"`` for PCM16, ``b"\\xff"`` for μ-law), a non-empty remainder is
        filled up to one whole frame by repeating ``pad`` in phase with the stream, so a two-byte pattern
        stays sample-aligned. Without it the remainder comes back short. Nothing buffered gives ``b""``.
        """
        rest = bytes(self._buf)
        self._buf.clear()
        if not rest or pad is None:
            return rest
        if not pad:
            raise AudioConfigError(
                "flush(pad=...) needs a non-empty pad pattern, or pad=None for no padding."
            )
        need = self._frame_bytes - len(rest)
        start = len(rest) % len(pad)
        tiled = pad * ((need + start) // len(pad) + 1)
        return rest + tiled[start : start + need]

    def reset(self) -> None:
        """Drop anything buffered."""
        self._buf.clear()


def silence(fmt: AudioFormat, ms: float) -> bytes:
    """``ms`` of silence in ``fmt``: zeros for PCM16, ``0xFF`` for μ-law, ``0xD5`` for A-law.

    μ-law ``0x00`` is a full-scale negative sample, not silence; this is the one place to get it right.
    """
    n = fmt.bytes_for_ms(ms)
    if n <= 0:
        return b""
    if fmt.encoding == "mulaw":
        return bytes((MULAW_SILENCE,)) * n
    if fmt.encoding == "alaw":
        return bytes((ALAW_SILENCE,)) * n
    return bytes(n)


def pcm16_samples(pcm: BytesLike) -> Int16Array:
    """A read-only int16 view of PCM16 LE bytes (no copy); a dangling odd byte is left out."""
    return np.frombuffer(pcm, dtype=PCM16_DTYPE, count=len(pcm) // 2)


def rms_dbfs(pcm: BytesLike) -> float:
    """RMS level of PCM16 bytes in dB relative to full scale (32768), floored at :data:`DBFS_FLOOR`.

    A full-scale square wave is 0 dBFS, a full-scale sine about -3 dBFS.
    """
    samples = pcm16_samples(pcm)
    if samples.size == 0:
        return DBFS_FLOOR
    as_float = samples.astype(np.float64)
    mean_square = float(np.dot(as_float, as_float)) / samples.size
    if mean_square <= 0.0:
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 10.0 * math.log10(mean_square / (_FULL_SCALE * _FULL_SCALE)))


def apply_gain_db(pcm: BytesLike, db: float) -> bytes:
    """Scale PCM16 bytes by ``db`` decibels, rounding and clipping to the int16 range.

    ``db == 0`` returns the input unchanged. A dangling odd byte is passed through untouched so the byte
    count (and a downstream :class:`PcmCarry`) stays consistent.
    """
    if db == 0.0:
        return pcm if isinstance(pcm, bytes) else bytes(pcm)
    if not math.isfinite(db):
        raise AudioConfigError(f"apply_gain_db(db=...) must be a finite number of decibels (got {db}).")
    scaled = pcm16_samples(pcm).astype(np.float32)
    scaled *= np.float32(10.0 ** (db / 20.0))
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    out = scaled.astype(PCM16_DTYPE).tobytes()
    return out + bytes(pcm[-1:]) if len(pcm) % 2 else out
