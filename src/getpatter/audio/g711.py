"""G.711 μ-law and A-law, table-driven with numpy and bit-exact with CPython ``audioop`` (width 2).

The encode tables have 65,536 entries indexed by the *bit pattern* of the int16 sample (its uint16 view),
so encoding a buffer is one reinterpret plus one gather with no int32 widening. The decode tables have 256
entries. All four are built once at import from the integer algorithms in ``protocols/audio.md`` §3 and
are read-only.

Byte helpers take whole buffers. A PCM16 buffer of odd length has a dangling half sample; the stateless
helpers ignore it (use :class:`~getpatter.audio.frames.PcmCarry` or a ``FormatConverter`` on a stream,
which carry it into the next chunk instead). Nothing here raises on arbitrary bytes.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from getpatter.audio._types import PCM16_DTYPE, BytesLike, CodeArray, Int16Array

#: The μ-law code word for 0 (+0). ``0x7F`` (-0) also decodes to 0, but encoders emit ``0xFF``.
MULAW_SILENCE: Final = 0xFF
#: The A-law code closest to zero (decodes to +8); A-law has no exact zero.
ALAW_SILENCE: Final = 0xD5

_MULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _int16_values_by_bit_pattern() -> NDArray[np.int32]:
    """Entry ``i`` is the int16 whose bit pattern is ``i``: 0..32767, then -32768..-1."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_mulaw_encode() -> CodeArray:
    # audioop's variant: floor to 14 bits *before* taking the magnitude (differs from the textbook on
    # 381 negative inputs, e.g. -1 -> 0x7E, not 0x7F).
    p = _int16_values_by_bit_pattern() >> 2
    mask = np.where(p < 0, 0x7F, 0xFF)
    p = np.minimum(np.abs(p), 8159) + 0x21
    seg = np.searchsorted(_MULAW_SEGMENT_ENDS, p, side="left").astype(np.int32)
    code = ((seg << 4) | ((p >> (seg + 1)) & 0x0F)) ^ mask
    code = np.where(seg >= 8, 0x7F ^ mask, code)
    return code.astype(np.uint8)


def _build_mulaw_decode() -> Int16Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(PCM16_DTYPE)


def _build_alaw_encode() -> CodeArray:
    p = _int16_values_by_bit_pattern() >> 3
    negative = p < 0
    mask = np.where(negative, 0x55, 0xD5)
    p = np.where(negative, -p - 1, p)
    seg = np.searchsorted(_ALAW_SEGMENT_ENDS, p, side="left").astype(np.int32)
    mant = np.where(seg < 2, p >> 1, p >> seg)
    code = ((seg << 4) | (mant & 0x0F)) ^ mask
    code = np.where(seg >= 8, 0x7F ^ mask, code)
    return code.astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a >> 4) & 0x07
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(PCM16_DTYPE)


def _frozen(table: NDArray[np.generic]) -> None:
    table.setflags(write=False)


_MULAW_ENC: Final = _build_mulaw_encode()
_MULAW_DEC: Final = _build_mulaw_decode()
_ALAW_ENC: Final = _build_alaw_encode()
_ALAW_DEC: Final = _build_alaw_decode()
for _table in (_MULAW_ENC, _MULAW_DEC, _ALAW_ENC, _ALAW_DEC):
    _frozen(_table)

#: ``bytes.translate`` tables for direct μ-law <-> A-law transcoding (decode then encode, fused).
MULAW_TO_ALAW: Final = _ALAW_ENC[_MULAW_DEC.view(np.uint16)].tobytes()
ALAW_TO_MULAW: Final = _MULAW_ENC[_ALAW_DEC.view(np.uint16)].tobytes()


def _bit_patterns(pcm: Int16Array) -> NDArray[np.uint16]:
    """The uint16 bit pattern of each sample, the encode-table index. Copies only for a foreign byte order."""
    if pcm.dtype.kind != "i" or pcm.dtype.itemsize != 2:
        raise TypeError(f"expected an int16 array, got dtype {pcm.dtype}")
    return pcm.astype(np.int16, copy=False).view(np.uint16)


def _pcm16_bit_patterns(pcm: BytesLike) -> NDArray[np.uint16]:
    """View a PCM16 LE buffer as uint16 bit patterns, ignoring a dangling odd byte. No copy."""
    return np.frombuffer(pcm, dtype="<u2", count=len(pcm) // 2)


# --- ndarray variants -------------------------------------------------------------------------------


#: Each μ-law code's decoded sample, squared: a window's energy straight from the codes.
MULAW_SQUARES: Final = _MULAW_DEC.astype(np.float64) ** 2


def mulaw_decode(codes: CodeArray) -> Int16Array:
    """μ-law codes (uint8) -> little-endian int16 samples, as a new array."""
    return _MULAW_DEC[codes]


def mulaw_encode(pcm: Int16Array) -> CodeArray:
    """int16 samples (either byte order) -> μ-law codes. Raises ``TypeError`` for a non-int16 array."""
    return _MULAW_ENC[_bit_patterns(pcm)]


def alaw_decode(codes: CodeArray) -> Int16Array:
    """A-law codes (uint8) -> little-endian int16 samples, as a new array."""
    return _ALAW_DEC[codes]


def alaw_encode(pcm: Int16Array) -> CodeArray:
    """int16 samples (either byte order) -> A-law codes. Raises ``TypeError`` for a non-int16 array."""
    return _ALAW_ENC[_bit_patterns(pcm)]


# --- bytes variants (the names API.md E.5 exports) ---------------------------------------------------


def mulaw_to_pcm16(data: BytesLike) -> bytes:
    """μ-law bytes -> PCM16 little-endian bytes (twice as long). Same as ``audioop.ulaw2lin(data, 2)``."""
    return _MULAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm16_to_mulaw(pcm: BytesLike) -> bytes:
    """PCM16 LE bytes -> μ-law bytes. Same as ``audioop.lin2ulaw(pcm, 2)``; an odd last byte is ignored."""
    return _MULAW_ENC[_pcm16_bit_patterns(pcm)].tobytes()


def alaw_to_pcm16(data: BytesLike) -> bytes:
    """A-law bytes -> PCM16 little-endian bytes. Same as ``audioop.alaw2lin(data, 2)``."""
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm16_to_alaw(pcm: BytesLike) -> bytes:
    """PCM16 LE bytes -> A-law bytes. Same as ``audioop.lin2alaw(pcm, 2)``; an odd last byte is ignored."""
    return _ALAW_ENC[_pcm16_bit_patterns(pcm)].tobytes()


def mulaw_to_alaw(data: BytesLike) -> bytes:
    """Transcode μ-law -> A-law byte for byte (equal to decoding then encoding)."""
    return bytes(data).translate(MULAW_TO_ALAW)


def alaw_to_mulaw(data: BytesLike) -> bytes:
    """Transcode A-law -> μ-law byte for byte (equal to decoding then encoding)."""
    return bytes(data).translate(ALAW_TO_MULAW)
