"""The 2x phone-path resampler: chunk-independent, immediate, flat in the phone band, no aliasing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from getpatter.audio.halfband import HalfbandResampler


def _tone(freq: float, rate: int, seconds: float = 0.5, amp: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def _gain_db(x: np.ndarray, y: np.ndarray, skip: int) -> float:
    rms = lambda v: float(np.sqrt(np.mean(v.astype(float) ** 2)))  # noqa: E731
    return 20 * np.log10(rms(y[skip:]) / rms(x))


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=997), min_size=1, max_size=30))
def test_output_does_not_depend_on_chunking(cuts: list[int]) -> None:
    pcm = _tone(700, 8000).tobytes() + _tone(1900, 8000).tobytes()
    for rates in ((8000, 16000), (16000, 8000)):
        whole = HalfbandResampler(*rates).process(pcm)
        chunked, r, pos = b"", HalfbandResampler(*rates), 0
        for cut in cuts:
            chunked += r.process(pcm[pos : pos + cut])
            pos += cut
        chunked += r.process(pcm[pos:])
        assert chunked == whole


def test_every_frame_comes_out_at_once() -> None:
    up, down = HalfbandResampler(8000, 16000), HalfbandResampler(16000, 8000)
    assert len(up.process(b"\x00\x01" * 160)) == 640
    assert len(down.process(b"\x00\x01" * 320)) == 320


@pytest.mark.parametrize("freq", [300, 1000, 2000, 3000, 3400])
def test_flat_across_the_phone_band(freq: int) -> None:
    x = _tone(freq, 8000)
    assert abs(_gain_db(x, HalfbandResampler(8000, 16000).process_array(x), 200)) < 0.2
    x16 = _tone(freq, 16000)
    assert abs(_gain_db(x16, HalfbandResampler(16000, 8000).process_array(x16), 100)) < 0.2


def test_downsampling_rejects_what_would_alias() -> None:
    x = _tone(5000, 16000)  # above 4 kHz: must not fold back into the phone band
    assert _gain_db(x, HalfbandResampler(16000, 8000).process_array(x), 100) < -60


def test_only_two_to_one() -> None:
    with pytest.raises(ValueError, match="2:1"):
        HalfbandResampler(8000, 24000)
