"""StreamResampler: chunk-size independence, flush/reset, filtering, and configuration errors."""

from __future__ import annotations

import numpy as np
import pytest

from getpatter.audio import (
    StatefulResampler,
    StreamResampler,
    create_resampler_8k_to_16k,
    create_resampler_16k_to_8k,
    create_resampler_24k_to_8k,
    create_resampler_24k_to_16k,
)
from getpatter.audio.errors import AudioConfigError

PAIRS = [
    (8000, 16000),
    (16000, 8000),
    (16000, 24000),
    (24000, 16000),
    (24000, 8000),
    (16000, 48000),
    (48000, 16000),
]


def tone(freq: float, rate: int, seconds: float, dbfs: float = -12.0) -> np.ndarray:
    n = np.arange(int(rate * seconds))
    amplitude = 10 ** (dbfs / 20) * 32767
    return np.rint(amplitude * np.sin(2 * np.pi * freq * n / rate)).astype("<i2")


def speechlike(rate: int, seconds: float, seed: int = 3) -> bytes:
    """Band-limited noise plus tones: exercises the filter more than a pure tone."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(int(rate * seconds)) * 3000
    return (
        np.clip(noise + tone(440, rate, seconds) + tone(2900, rate, seconds, -20), -32768, 32767)
        .astype("<i2")
        .tobytes()
    )


def run(resampler: StreamResampler, data: bytes, sizes: list[int] | int) -> bytes:
    out, i, k = bytearray(), 0, 0
    while i < len(data):
        size = sizes if isinstance(sizes, int) else sizes[k % len(sizes)]
        out += resampler.process(data[i : i + size])
        i += size
        k += 1
    return bytes(out + resampler.flush())


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_output_is_identical_whole_in_20ms_frames_and_in_odd_pieces(in_rate: int, out_rate: int) -> None:
    data = speechlike(in_rate, 1.0)
    whole = run(StreamResampler(in_rate, out_rate), data, len(data))
    frames = run(StreamResampler(in_rate, out_rate), data, in_rate // 50 * 2)
    rng = np.random.default_rng(in_rate + out_rate)
    odd_sizes = [int(s) * 2 + 1 for s in rng.integers(0, 300, 64)]  # odd byte counts split samples
    pieces = run(StreamResampler(in_rate, out_rate), data, odd_sizes)
    assert len(whole) == 2 * out_rate  # one second in, exactly one second out after flush
    assert frames == whole
    assert pieces == whole


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (24000, 8000)])
def test_flush_returns_the_tail_and_starts_a_fresh_stream(in_rate: int, out_rate: int) -> None:
    data = speechlike(in_rate, 0.2)
    resampler = StreamResampler(in_rate, out_rate)
    body = resampler.process(data)
    tail = resampler.flush()
    assert len(tail) > 0  # soxr holds the last part of the signal until flushed
    assert len(body) + len(tail) == 2 * int(out_rate * 0.2)
    # After flush the next utterance comes out exactly as from a new resampler.
    assert run(resampler, data, 320) == run(StreamResampler(in_rate, out_rate), data, 320)


def test_reset_drops_history_and_the_carried_byte() -> None:
    data = speechlike(16000, 0.3)
    resampler = StreamResampler(16000, 8000)
    resampler.process(speechlike(16000, 0.5, seed=9) + b"\x01")
    resampler.reset()
    assert run(resampler, data, 640) == run(StreamResampler(16000, 8000), data, 640)


def test_a_dangling_byte_at_flush_is_dropped_not_padded() -> None:
    resampler = StreamResampler(8000, 16000)
    out = resampler.process(tone(1000, 8000, 0.1).tobytes() + b"\x55")
    out += resampler.flush()
    assert len(out) == 2 * 1600


def test_tone_keeps_its_frequency_and_level_and_is_time_aligned() -> None:
    source = tone(1000, 8000, 0.5)
    out = np.frombuffer(run(create_resampler_8k_to_16k(), source.tobytes(), 320), "<i2")
    ideal = tone(1000, 16000, 0.5)
    assert dominant_hz(out.tobytes(), 16000) == pytest.approx(1000, abs=5)
    middle = slice(1600, 6400)  # away from the edges of the filter
    # soxr output is delay-compensated: sample n out lines up with time n/16000 in.
    assert np.max(np.abs(out[middle].astype(int) - ideal[middle])) < 30


def test_downsampling_filters_out_what_would_alias() -> None:
    # 5 kHz cannot exist at 8 kHz; without a low-pass it would fold to 3 kHz at full level.
    out = np.frombuffer(run(create_resampler_16k_to_8k(), tone(5000, 16000, 0.5, -6).tobytes(), 640), "<i2")
    assert np.sqrt(np.mean(out[800:3200].astype(np.float64) ** 2)) < 2.0  # under -84 dBFS
    passband = np.frombuffer(
        run(create_resampler_16k_to_8k(), tone(3000, 16000, 0.5, -6).tobytes(), 640), "<i2"
    )
    rms = np.sqrt(np.mean(passband[800:3200].astype(np.float64) ** 2))
    assert 20 * np.log10(rms / 32767) == pytest.approx(-9.03, abs=0.2)  # -6 dB peak sine, unattenuated


def test_24k_to_8k_keeps_speech_band() -> None:
    out = run(create_resampler_24k_to_8k(), tone(1500, 24000, 0.5).tobytes(), 960)
    assert len(out) == 8000
    assert dominant_hz(out, 8000) == pytest.approx(1500, abs=5)


def test_overshoot_clips_instead_of_wrapping() -> None:
    square = np.tile(np.r_[np.full(20, 32767), np.full(20, -32768)], 40).astype("<i2")
    out = np.frombuffer(run(create_resampler_8k_to_16k(), square.tobytes(), 320), "<i2").astype(int)
    # Centres of each half-period keep their sign (a wrap-around would flip it).
    assert all(out[80 * p + 20] > 20000 and out[80 * p + 60] < -20000 for p in range(2, 38))
    assert out.max() == 32767
    assert out.min() == -32768


def test_equal_rates_pass_through_with_carry() -> None:
    resampler = StreamResampler(16000, 16000)
    chunk = bytes(range(20))
    assert resampler.process(chunk) is chunk
    assert resampler.process(b"\x01\x02\x03") == b"\x01\x02"
    assert resampler.process(b"\x04") == b"\x03\x04"
    assert resampler.flush() == b""


def test_process_array_matches_process() -> None:
    data = speechlike(24000, 0.3)
    by_bytes = StreamResampler(24000, 16000)
    by_array = StreamResampler(24000, 16000)
    a = by_bytes.process(data) + by_bytes.flush()
    b = by_array.process_array(np.frombuffer(data, "<i2")).tobytes() + by_array.flush_array().tobytes()
    assert a == b


def test_factories_aliases_and_quality() -> None:
    assert StatefulResampler is StreamResampler
    cases = [
        (create_resampler_8k_to_16k(), 8000, 16000),
        (create_resampler_16k_to_8k(), 16000, 8000),
        (create_resampler_24k_to_16k(), 24000, 16000),
        (create_resampler_24k_to_8k(quality="LQ"), 24000, 8000),
    ]
    for resampler, in_rate, out_rate in cases:
        assert (resampler.in_rate, resampler.out_rate) == (in_rate, out_rate)
    assert create_resampler_8k_to_16k().quality == "MQ"
    assert cases[3][0].quality == "LQ"
    assert "24000 -> 8000" in repr(cases[3][0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_rate": 0, "out_rate": 8000}, "in_rate"),
        ({"in_rate": 8000, "out_rate": -1}, "out_rate"),
        ({"in_rate": 8000.5, "out_rate": 16000}, "in_rate"),
        ({"in_rate": True, "out_rate": 16000}, "in_rate"),
        ({"in_rate": 8000, "out_rate": 16000, "quality": "best"}, "quality"),
    ],
)
def test_bad_config_raises_config_error(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(AudioConfigError, match=match):
        StreamResampler(**kwargs)  # type: ignore[arg-type]
