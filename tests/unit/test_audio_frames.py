"""PcmCarry, FrameSplitter and the level helpers."""

from __future__ import annotations

import numpy as np
import pytest

from getpatter.audio import (
    ALAW_8K,
    DBFS_FLOOR,
    MULAW_8K,
    PCM16_16K,
    FrameSplitter,
    PcmCarry,
    apply_gain_db,
    pcm16_samples,
    rms_dbfs,
    silence,
)
from getpatter.audio.errors import AudioConfigError


def test_pcm_carry_returns_whole_samples_and_carries_the_odd_byte() -> None:
    carry = PcmCarry()
    assert carry.push(b"\x01\x02\x03") == b"\x01\x02"
    assert carry.pending == 1
    assert carry.push(b"\x04") == b"\x03\x04"
    assert carry.push(b"\x05") == b""
    assert carry.push(b"\x06\x07\x08") == b"\x05\x06\x07\x08"
    assert carry.pending == 0


def test_pcm_carry_fast_path_returns_the_same_object() -> None:
    chunk = bytes(640)
    assert PcmCarry().push(chunk) is chunk


def test_pcm_carry_accepts_bytearray_and_memoryview_and_resets() -> None:
    carry = PcmCarry()
    assert carry.push(bytearray(b"\x01\x02\x03")) == b"\x01\x02"
    carry.reset()
    assert carry.pending == 0
    assert carry.push(memoryview(b"\x09\x0a")) == b"\x09\x0a"


def test_pcm_carry_reassembles_any_split_exactly() -> None:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 5001, dtype=np.uint8).tobytes()
    carry, out, i = PcmCarry(), bytearray(), 0
    while i < len(data):
        k = int(rng.integers(1, 9))
        piece = carry.push(data[i : i + k])
        assert len(piece) % 2 == 0
        out += piece
        i += k
    assert bytes(out) == data[:5000]
    assert carry.pending == 1


def test_pcm_carry_rejects_bad_width() -> None:
    with pytest.raises(AudioConfigError, match="sample_width"):
        PcmCarry(0)


def test_frame_splitter_reframes_arbitrary_chunks() -> None:
    data = bytes(range(256)) * 10
    splitter = FrameSplitter(160)
    frames: list[bytes] = []
    for start in range(0, len(data), 37):
        frames += splitter.push(data[start : start + 37])
    assert all(len(f) == 160 for f in frames)
    assert b"".join(frames) == data[: 160 * len(frames)]
    assert len(frames) == len(data) // 160
    assert splitter.pending == len(data) % 160
    assert splitter.flush() == data[160 * len(frames) :]
    assert splitter.pending == 0
    assert splitter.flush() == b""


def test_frame_splitter_exact_frame_fast_path_and_big_chunk() -> None:
    splitter = FrameSplitter(4)
    frame = b"abcd"
    assert splitter.push(frame)[0] is frame
    assert splitter.push(b"0123456789") == [b"0123", b"4567"]
    assert splitter.push(b"") == []
    assert splitter.flush(pad=b"\xff") == b"89\xff\xff"


def test_frame_splitter_pads_in_phase_with_a_two_byte_pattern() -> None:
    splitter = FrameSplitter(8)
    splitter.push(b"abc")
    # Stream positions 3..7 continue the "xy" pattern as if it had started at position 0.
    assert splitter.flush(pad=b"xy") == b"abcyxyxy"


def test_frame_splitter_validation() -> None:
    with pytest.raises(AudioConfigError, match="frame_bytes"):
        FrameSplitter(0)
    splitter = FrameSplitter(4)
    splitter.push(b"a")
    with pytest.raises(AudioConfigError, match="pad"):
        splitter.flush(pad=b"")


def test_frame_splitter_reset() -> None:
    splitter = FrameSplitter(4)
    splitter.push(b"abc")
    splitter.reset()
    assert splitter.push(b"wxyz") == [b"wxyz"]


def test_silence_bytes_per_format() -> None:
    assert silence(MULAW_8K, 20) == b"\xff" * 160
    assert silence(ALAW_8K, 20) == b"\xd5" * 160
    assert silence(PCM16_16K, 20) == bytes(640)
    assert silence(PCM16_16K, 0) == b""


def test_rms_dbfs_of_known_signals() -> None:
    square = np.tile(np.array([32767, -32767], dtype="<i2"), 100).tobytes()
    assert rms_dbfs(square) == pytest.approx(0.0, abs=0.001)
    n = np.arange(16000)
    sine = np.rint(16384 * np.sin(2 * np.pi * 1000 * n / 16000)).astype("<i2").tobytes()
    assert rms_dbfs(sine) == pytest.approx(-6.02 - 3.01, abs=0.02)
    assert rms_dbfs(bytes(640)) == DBFS_FLOOR
    assert rms_dbfs(b"") == DBFS_FLOOR
    assert rms_dbfs(b"\x01") == DBFS_FLOOR


def test_apply_gain_db_scales_rounds_and_clips() -> None:
    pcm = np.array([1000, -1000, 20000, -20000, 0], dtype="<i2").tobytes()
    out = np.frombuffer(apply_gain_db(pcm, 6.0), "<i2")
    assert out.tolist() == [1995, -1995, 32767, -32768, 0]
    out = np.frombuffer(apply_gain_db(pcm, -20.0), "<i2")
    assert out.tolist() == [100, -100, 2000, -2000, 0]
    assert apply_gain_db(pcm, 0.0) is pcm


def test_apply_gain_db_keeps_an_odd_byte_and_rejects_nan() -> None:
    assert apply_gain_db(b"\x10\x00\x07", 6.0)[-1:] == b"\x07"
    assert len(apply_gain_db(b"\x10\x00\x07", 6.0)) == 3
    with pytest.raises(AudioConfigError, match="db"):
        apply_gain_db(b"\x00\x00", float("nan"))


def test_pcm16_samples_is_a_zero_copy_view() -> None:
    pcm = np.array([1, -2, 3], dtype="<i2").tobytes()
    view = pcm16_samples(pcm + b"\x00")
    assert view.tolist() == [1, -2, 3]
    assert not view.flags.writeable
