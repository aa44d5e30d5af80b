"""G.711 codecs: bit-exact with CPython audioop on every input, plus the documented vectors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from getpatter.audio import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")

ALL_PCM = np.arange(-32768, 32768, dtype="<i2")
ALL_PCM_BYTES = ALL_PCM.tobytes()
ALL_CODES = bytes(range(256))


def test_mulaw_encode_matches_audioop_on_all_65536_inputs() -> None:
    assert g711.pcm16_to_mulaw(ALL_PCM_BYTES) == audioop.lin2ulaw(ALL_PCM_BYTES, 2)


def test_alaw_encode_matches_audioop_on_all_65536_inputs() -> None:
    assert g711.pcm16_to_alaw(ALL_PCM_BYTES) == audioop.lin2alaw(ALL_PCM_BYTES, 2)


def test_mulaw_decode_matches_audioop_on_all_256_codes() -> None:
    assert g711.mulaw_to_pcm16(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_matches_audioop_on_all_256_codes() -> None:
    assert g711.alaw_to_pcm16(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("x", "mu_code", "mu_dec", "a_code", "a_dec"),
    [
        (0, 0xFF, 0, 0xD5, 8),
        (1, 0xFF, 0, 0xD5, 8),
        (-1, 0x7E, -8, 0x55, -8),
        (4, 0xFE, 8, 0xD5, 8),
        (100, 0xF2, 104, 0xD3, 104),
        (-100, 0x72, -104, 0x53, -104),
        (1000, 0xCE, 988, 0xFA, 1008),
        (-1000, 0x4E, -988, 0x7A, -1008),
        (4000, 0xAF, 4092, 0x9A, 4032),
        (8000, 0xA0, 7932, 0x8A, 8064),
        (16000, 0x90, 15996, 0xBA, 16128),
        (32767, 0x80, 32124, 0xAA, 32256),
        (-32768, 0x00, -32124, 0x2A, -32256),
    ],
)
def test_documented_vectors(x: int, mu_code: int, mu_dec: int, a_code: int, a_dec: int) -> None:
    pcm = np.array([x], dtype="<i2").tobytes()
    assert g711.pcm16_to_mulaw(pcm) == bytes([mu_code])
    assert g711.pcm16_to_alaw(pcm) == bytes([a_code])
    assert np.frombuffer(g711.mulaw_to_pcm16(bytes([mu_code])), "<i2")[0] == mu_dec
    assert np.frombuffer(g711.alaw_to_pcm16(bytes([a_code])), "<i2")[0] == a_dec


def test_array_variants_match_bytes_variants_and_handle_big_endian() -> None:
    codes = np.frombuffer(ALL_CODES, np.uint8)
    assert g711.mulaw_decode(codes).tobytes() == g711.mulaw_to_pcm16(ALL_CODES)
    assert g711.alaw_decode(codes).tobytes() == g711.alaw_to_pcm16(ALL_CODES)
    assert g711.mulaw_encode(ALL_PCM).tobytes() == g711.pcm16_to_mulaw(ALL_PCM_BYTES)
    big_endian = ALL_PCM.astype(">i2")
    assert g711.mulaw_encode(big_endian).tobytes() == g711.pcm16_to_mulaw(ALL_PCM_BYTES)
    assert g711.alaw_encode(big_endian).tobytes() == g711.pcm16_to_alaw(ALL_PCM_BYTES)
    strided = ALL_PCM[::7]
    assert g711.alaw_encode(strided).tobytes() == g711.pcm16_to_alaw(strided.tobytes())


def test_encode_rejects_non_int16_arrays() -> None:
    with pytest.raises(TypeError, match="int16"):
        g711.mulaw_encode(np.zeros(4, dtype=np.int32))  # type: ignore[arg-type]


def test_odd_trailing_byte_is_ignored_by_stateless_encoders() -> None:
    pcm = np.array([1000, -1000], dtype="<i2").tobytes()
    assert g711.pcm16_to_mulaw(pcm + b"\x7f") == g711.pcm16_to_mulaw(pcm)
    assert g711.pcm16_to_alaw(pcm + b"\x7f") == g711.pcm16_to_alaw(pcm)
    assert g711.pcm16_to_mulaw(b"\x01") == b""


def test_silence_codes_decode_to_near_zero() -> None:
    assert g711.mulaw_to_pcm16(bytes([g711.MULAW_SILENCE])) == b"\x00\x00"
    assert np.frombuffer(g711.alaw_to_pcm16(bytes([g711.ALAW_SILENCE])), "<i2")[0] == 8
    assert g711.pcm16_to_mulaw(bytes(320)) == b"\xff" * 160
    assert g711.pcm16_to_alaw(bytes(320)) == b"\xd5" * 160


def test_mulaw_alaw_transcoding_equals_decode_then_encode() -> None:
    assert g711.mulaw_to_alaw(ALL_CODES) == audioop.lin2alaw(audioop.ulaw2lin(ALL_CODES, 2), 2)
    assert g711.alaw_to_mulaw(ALL_CODES) == audioop.lin2ulaw(audioop.alaw2lin(ALL_CODES, 2), 2)


def test_decoded_codes_reencode_to_themselves_except_negative_zero() -> None:
    # Every code is a fixed point of decode->encode, save mu-law 0x7F (-0), which encodes as 0xFF (+0).
    mu_round = g711.pcm16_to_mulaw(g711.mulaw_to_pcm16(ALL_CODES))
    assert [i for i in range(256) if mu_round[i] != i] == [0x7F]
    assert g711.pcm16_to_alaw(g711.alaw_to_pcm16(ALL_CODES)) == ALL_CODES


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        g711._MULAW_DEC[0] = 1
