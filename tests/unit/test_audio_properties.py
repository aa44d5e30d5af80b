"""Property tests: codecs and converters never raise on arbitrary bytes, and keep their length contracts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from getpatter.audio import (
    ALAW_8K,
    MULAW_8K,
    PCM16_8K,
    PCM16_16K,
    PCM16_24K,
    AudioFormat,
    FormatConverter,
    FrameSplitter,
    PcmCarry,
    StreamResampler,
    VoiceActivity,
    alaw_to_mulaw,
    alaw_to_pcm16,
    mulaw_to_alaw,
    mulaw_to_pcm16,
    pcm16_to_alaw,
    pcm16_to_mulaw,
)

FORMATS = [MULAW_8K, ALAW_8K, PCM16_8K, PCM16_16K, PCM16_24K, AudioFormat("pcm16", 48000)]
chunks = st.lists(st.binary(max_size=700), max_size=8)


@given(st.binary(max_size=2000))
def test_codecs_never_raise_and_keep_sample_counts(data: bytes) -> None:
    assert len(mulaw_to_pcm16(data)) == 2 * len(data)
    assert len(alaw_to_pcm16(data)) == 2 * len(data)
    assert len(pcm16_to_mulaw(data)) == len(data) // 2
    assert len(pcm16_to_alaw(data)) == len(data) // 2
    assert len(mulaw_to_alaw(data)) == len(data) == len(alaw_to_mulaw(data))
    assert pcm16_to_mulaw(mulaw_to_pcm16(data)) == data.replace(b"\x7f", b"\xff")  # -0 becomes +0
    assert pcm16_to_alaw(alaw_to_pcm16(data)) == data


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(FORMATS), st.sampled_from(FORMATS), chunks)
def test_converter_never_raises_and_output_is_whole_samples(
    src: AudioFormat, dst: AudioFormat, parts: list[bytes]
) -> None:
    conv = FormatConverter(src, dst)
    out = b"".join(conv.process(p) for p in parts) + conv.flush()
    if conv.is_passthrough:
        assert out == b"".join(parts)
    else:
        assert len(out) % dst.bytes_per_sample == 0
        n_in = sum(len(p) for p in parts) // src.bytes_per_sample
        n_out = len(out) // dst.bytes_per_sample
        assert abs(n_out - n_in * dst.sample_rate / src.sample_rate) <= 1


@settings(max_examples=40, deadline=None)
@given(chunks)
def test_resampler_output_does_not_depend_on_chunking(parts: list[bytes]) -> None:
    joined = b"".join(parts)
    split = StreamResampler(8000, 16000)
    whole = StreamResampler(8000, 16000)
    pieces = b"".join(split.process(p) for p in parts) + split.flush()
    assert pieces == whole.process(joined) + whole.flush()


@given(chunks, st.integers(min_value=1, max_value=400))
def test_carry_and_splitter_preserve_the_stream(parts: list[bytes], frame: int) -> None:
    joined = b"".join(parts)
    carry, splitter = PcmCarry(), FrameSplitter(frame)
    carried = b"".join(carry.push(p) for p in parts)
    assert carried == joined[: len(joined) - len(joined) % 2]
    frames = [f for p in parts for f in splitter.push(p)]
    assert all(len(f) == frame for f in frames)
    assert b"".join(frames) + splitter.flush() == joined


@settings(max_examples=40, deadline=None)
@given(chunks)
def test_voice_activity_never_raises_on_arbitrary_bytes(parts: list[bytes]) -> None:
    activity = VoiceActivity()
    for p in parts:
        activity.feed(p)
    activity.finish()
    assert activity.stream_ms == (sum(len(p) for p in parts) // 640) * 20
