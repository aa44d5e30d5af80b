"""One streaming converter per audio edge: decode -> resample -> encode, only the stages needed.

The call layer puts a :class:`FormatConverter` at each edge (carrier μ-law 8k -> PCM16 16k inbound,
PCM16 16k or TTS 24k -> carrier outbound, ...). It is stateful (filter history, odd-byte carry), so use
one per direction per call, ``flush()`` at the end of an utterance and ``reset()`` on barge-in.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from getpatter.audio._types import PCM16_DTYPE, Int16Array
from getpatter.audio.errors import AudioConfigError
from getpatter.audio.format import AudioFormat
from getpatter.audio.frames import PcmCarry
from getpatter.audio.g711 import (
    ALAW_TO_MULAW,
    MULAW_TO_ALAW,
    alaw_decode,
    alaw_encode,
    mulaw_decode,
    mulaw_encode,
)
from getpatter.audio.halfband import HalfbandResampler
from getpatter.audio.resample import DEFAULT_QUALITY, Quality, StreamResampler

_ENCODINGS: Final = ("pcm16", "mulaw", "alaw")


def _check_format(name: str, fmt: object) -> AudioFormat:
    if not isinstance(fmt, AudioFormat):
        raise AudioConfigError(
            f"{name} must be an AudioFormat, e.g. AudioFormat('mulaw', 8000) (got {fmt!r})."
        )
    if fmt.encoding not in _ENCODINGS:
        raise AudioConfigError(
            f"{name}.encoding must be one of {', '.join(_ENCODINGS)} (got {fmt.encoding!r})."
        )
    rate = fmt.sample_rate
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise AudioConfigError(f"{name}.sample_rate must be a positive integer in Hz (got {rate!r}).")
    return fmt


class FormatConverter:
    """Converts a byte stream from ``src`` to ``dst`` (see :class:`~getpatter.audio.format.AudioFormat`).

    Contract:
    - ``src == dst``: exact pass-through, ``process`` returns the very object it was given and nothing
      is buffered (the cheapest and best-sounding path, e.g. μ-law 8k carrier <-> μ-law 8k engine).
    - μ-law <-> A-law at the same rate: a byte-for-byte table, no state.
    - otherwise PCM16 input is carried to whole samples, G.711 is decoded by table, the rate is changed by
      a :class:`StreamResampler` when rates differ, and the result is encoded to ``dst``.
    ``process`` returns what is ready (possibly ``b""``: the resampler buffers); ``flush`` returns the
    rest and leaves the converter ready for the next utterance. Output never depends on chunking.
    """

    __slots__ = ("_carry", "_dst", "_resampler", "_src", "_translate")

    def __init__(self, src: AudioFormat, dst: AudioFormat, *, quality: Quality = DEFAULT_QUALITY) -> None:
        self._src = _check_format("src", src)
        self._dst = _check_format("dst", dst)
        self._carry = PcmCarry(2) if src.encoding == "pcm16" else None
        self._resampler: StreamResampler | HalfbandResampler | None = None
        if src.sample_rate != dst.sample_rate:
            ratio = {src.sample_rate, dst.sample_rate}
            if max(ratio) == 2 * min(ratio):  # the phone path: no block delay (see halfband.py)
                self._resampler = HalfbandResampler(src.sample_rate, dst.sample_rate)
            else:
                self._resampler = StreamResampler(src.sample_rate, dst.sample_rate, quality=quality)
        self._translate: bytes | None = None
        if self._resampler is None and (src.encoding, dst.encoding) == ("mulaw", "alaw"):
            self._translate = MULAW_TO_ALAW
        elif self._resampler is None and (src.encoding, dst.encoding) == ("alaw", "mulaw"):
            self._translate = ALAW_TO_MULAW

    def __repr__(self) -> str:
        return f"FormatConverter({self._src} -> {self._dst})"

    @property
    def src(self) -> AudioFormat:
        return self._src

    @property
    def dst(self) -> AudioFormat:
        return self._dst

    @property
    def is_passthrough(self) -> bool:
        """True when ``process`` hands bytes back untouched."""
        return self._src == self._dst

    def process(self, data: bytes) -> bytes:
        """Convert one chunk of ``src`` bytes; return the ``dst`` bytes ready so far."""
        if self._src == self._dst:
            return data
        if self._translate is not None:
            return data.translate(self._translate)
        samples = self._decode(data)
        if samples.size == 0:
            return b""
        if self._resampler is not None:
            samples = self._resampler.process_array(samples)
        return self._encode(samples)

    def flush(self) -> bytes:
        """End of stream: return the resampler's tail (encoded) and reset for the next stream.

        A dangling odd PCM16 byte cannot form a sample and is dropped here.
        """
        if self._carry is not None:
            self._carry.reset()
        if self._resampler is None:
            return b""
        return self._encode(self._resampler.flush_array())

    def reset(self) -> None:
        """Drop all buffered state without output (barge-in, long gap)."""
        if self._carry is not None:
            self._carry.reset()
        if self._resampler is not None:
            self._resampler.reset()

    def _decode(self, data: bytes) -> Int16Array:
        encoding = self._src.encoding
        if encoding == "mulaw":
            return mulaw_decode(np.frombuffer(data, dtype=np.uint8))
        if encoding == "alaw":
            return alaw_decode(np.frombuffer(data, dtype=np.uint8))
        assert self._carry is not None
        return np.frombuffer(self._carry.push(data), dtype=PCM16_DTYPE)

    def _encode(self, samples: Int16Array) -> bytes:
        if samples.size == 0:
            return b""
        encoding = self._dst.encoding
        if encoding == "mulaw":
            return mulaw_encode(samples).tobytes()
        if encoding == "alaw":
            return alaw_encode(samples).tobytes()
        return samples.astype(PCM16_DTYPE, copy=False).tobytes()
