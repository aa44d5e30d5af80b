"""FormatConverter: pass-through, transcoding, resampling edges, chunk independence."""

from __future__ import annotations

import numpy as np
import pytest

from getpatter.audio import (
    ALAW_8K,
    MULAW_8K,
    PCM16_8K,
    PCM16_16K,
    PCM16_24K,
    AudioFormat,
    FormatConverter,
    alaw_to_pcm16,
    mulaw_to_alaw,
    mulaw_to_pcm16,
    pcm16_to_alaw,
    pcm16_to_mulaw,
)
from getpatter.audio.errors import AudioConfigError
from getpatter.audio.halfband import TAPS, HalfbandResampler


def tone(freq: float, rate: int, seconds: float, dbfs: float = -12.0) -> bytes:
    n = np.arange(int(rate * seconds))
    return np.rint(10 ** (dbfs / 20) * 32767 * np.sin(2 * np.pi * freq * n / rate)).astype("<i2").tobytes()


def convert(conv: FormatConverter, data: bytes, size: int) -> bytes:
    out = bytearray()
    for i in range(0, len(data), size):
        out += conv.process(data[i : i + size])
    return bytes(out + conv.flush())


def test_same_format_is_an_identity_pass_through() -> None:
    conv = FormatConverter(MULAW_8K, AudioFormat("mulaw", 8000))
    chunk = bytes(range(160))
    assert conv.is_passthrough
    assert conv.process(chunk) is chunk
    odd = b"\x01\x02\x03"
    assert FormatConverter(PCM16_16K, PCM16_16K).process(odd) is odd
    assert conv.flush() == b""


def test_twilio_inbound_mulaw_8k_to_pcm16_16k_equals_decode_then_resample() -> None:
    mulaw = pcm16_to_mulaw(tone(700, 8000, 0.5))
    expected = HalfbandResampler(8000, 16000).process(mulaw_to_pcm16(mulaw))
    conv = FormatConverter(MULAW_8K, PCM16_16K)
    assert len(conv.process(mulaw[:160])) == 640  # the phone path never holds a frame back
    got = convert(FormatConverter(MULAW_8K, PCM16_16K), mulaw, 160)
    assert got == expected
    assert len(got) == 16000


def test_twilio_outbound_pcm16_16k_to_mulaw_8k_in_odd_chunks() -> None:
    pcm = tone(700, 16000, 0.5)
    expected = pcm16_to_mulaw(HalfbandResampler(16000, 8000).process(pcm))
    got = convert(FormatConverter(PCM16_16K, MULAW_8K), pcm, 333)
    assert got == expected
    assert len(got) == 4000


def test_tts_24k_to_mulaw_8k_is_chunk_independent() -> None:
    pcm = tone(300, 24000, 0.4) + tone(1200, 24000, 0.4)
    whole = convert(FormatConverter(PCM16_24K, MULAW_8K), pcm, len(pcm))
    assert convert(FormatConverter(PCM16_24K, MULAW_8K), pcm, 960) == whole
    assert convert(FormatConverter(PCM16_24K, MULAW_8K), pcm, 101) == whole
    assert len(whole) == 6400


def test_mulaw_alaw_same_rate_is_a_stateless_table() -> None:
    codes = bytes(range(256))
    conv = FormatConverter(MULAW_8K, ALAW_8K)
    assert conv.process(codes) == mulaw_to_alaw(codes)
    assert conv.process(codes) == pcm16_to_alaw(mulaw_to_pcm16(codes))
    assert FormatConverter(ALAW_8K, MULAW_8K).process(conv.process(codes[:16])) != b""


def test_decode_only_and_encode_only_at_same_rate() -> None:
    codes = bytes(range(256))
    assert FormatConverter(MULAW_8K, PCM16_8K).process(codes) == mulaw_to_pcm16(codes)
    assert FormatConverter(ALAW_8K, PCM16_8K).process(codes) == alaw_to_pcm16(codes)
    pcm = tone(500, 8000, 0.1)
    conv = FormatConverter(PCM16_8K, MULAW_8K)
    assert conv.process(pcm[:101]) + conv.process(pcm[101:]) == pcm16_to_mulaw(pcm)
    assert conv.flush() == b""


def test_round_trip_mulaw_8k_to_16k_and_back_keeps_the_signal() -> None:
    source = pcm16_to_mulaw(tone(1000, 8000, 0.5))
    up = convert(FormatConverter(MULAW_8K, PCM16_16K), source, 160)
    back = convert(FormatConverter(PCM16_16K, MULAW_8K), up, 640)
    delay = (TAPS - 1) // 2  # up + down: (TAPS-1)/2 samples at 16 kHz each, i.e. that many at 8 kHz
    a = np.frombuffer(mulaw_to_pcm16(source), "<i2")[400:3600].astype(int)
    b = np.frombuffer(mulaw_to_pcm16(back), "<i2")[400 + delay : 3600 + delay].astype(int)
    assert np.sqrt(np.mean((a - b) ** 2)) < 0.02 * np.sqrt(np.mean(a**2))


def test_reset_drops_state_and_carry() -> None:
    pcm = tone(700, 16000, 0.2)
    conv = FormatConverter(PCM16_16K, MULAW_8K)
    conv.process(tone(300, 16000, 0.3) + b"\x01")
    conv.reset()
    assert convert(conv, pcm, 640) == convert(FormatConverter(PCM16_16K, MULAW_8K), pcm, 640)


def test_empty_chunks_produce_nothing() -> None:
    conv = FormatConverter(MULAW_8K, PCM16_16K)
    assert conv.process(b"") == b""
    assert FormatConverter(PCM16_16K, MULAW_8K).process(b"\x01") == b""


@pytest.mark.parametrize(
    ("src", "dst", "match"),
    [
        ("mulaw", PCM16_16K, "src"),
        (MULAW_8K, AudioFormat("opus", 48000), "dst.encoding"),  # type: ignore[arg-type]
        (AudioFormat("pcm16", 0), PCM16_16K, "src.sample_rate"),
    ],
)
def test_bad_formats_raise_config_error(src: object, dst: object, match: str) -> None:
    with pytest.raises(AudioConfigError, match=match):
        FormatConverter(src, dst)  # type: ignore[arg-type]


def test_repr_names_both_formats() -> None:
    text = repr(FormatConverter(MULAW_8K, PCM16_16K))
    assert "mulaw" in text and "16000" in text
