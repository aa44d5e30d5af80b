"""Caller-audio filters (getpatter.audio.filters): frequency response, block-size independence, gating."""

from __future__ import annotations

import numpy as np
import pytest

from getpatter import PatterConfigError
from getpatter.audio.filters import FilterChain, HighPassFilter, NoiseGate, filter_for_call

RATE = 16000


def _tone(freq: float, seconds: float = 1.0, amplitude: float = 8000.0) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def _rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def _blocks(f: object, pcm: bytes, size: int) -> bytes:
    return b"".join(f(pcm[i : i + size]) for i in range(0, len(pcm), size))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("freq", "low", "high"), [(0, 0.0, 0.01), (30, 0.0, 0.2), (300, 0.95, 1.05), (2000, 0.95, 1.05)]
)
def test_high_pass_removes_dc_and_hum_and_keeps_the_voice_band(freq: float, low: float, high: float) -> None:
    pcm = np.full(RATE, 4000, dtype="<i2").tobytes() if freq == 0 else _tone(freq)
    out = _blocks(HighPassFilter(100), pcm, 640)  # 20 ms blocks
    assert len(out) == len(pcm)
    assert low <= _rms(out[RATE:]) / _rms(pcm[RATE:]) <= high  # after the first half second


def test_high_pass_output_does_not_depend_on_block_sizes() -> None:
    pcm = _tone(440) + _tone(60)
    whole = HighPassFilter(150)(pcm)
    assert _blocks(HighPassFilter(150), pcm, 666) == whole  # odd sample counts per block too
    assert _blocks(HighPassFilter(150), pcm, 2) == whole


def test_noise_gate_closes_after_the_hold_and_opens_at_once() -> None:
    gate = NoiseGate(-40.0, hold_ms=100, floor_db=-40.0)
    quiet = _tone(300, 0.5, amplitude=100.0)  # about -50 dBFS
    loud = _tone(300, 0.2, amplitude=8000.0)
    held = _blocks(gate, quiet[:3200], 640)  # the first 100 ms stay open (hold)
    assert held == quiet[:3200]
    closed = _blocks(gate, quiet[3200:], 640)
    assert _rms(closed[640:]) < _rms(quiet) / 50  # -40 dB once closed (after one ramp block)
    opened = _blocks(gate, loud, 640)
    assert _rms(opened[640:]) == pytest.approx(_rms(loud[640:]), rel=1e-3)  # speech opens it immediately


def test_each_call_gets_its_own_state() -> None:
    chain = FilterChain(HighPassFilter(), NoiseGate())
    a, b = filter_for_call(chain), filter_for_call(chain)
    assert a is not b and a.filters[0] is not chain.filters[0]  # type: ignore[attr-defined]
    plain = bytes.upper  # a stateless function is used as is
    assert filter_for_call(plain) is plain


@pytest.mark.parametrize(
    "build",
    [lambda: HighPassFilter(5), lambda: HighPassFilter(True), lambda: NoiseGate(10), lambda: FilterChain(3)],
)
def test_bad_settings_are_refused(build: object) -> None:
    with pytest.raises(PatterConfigError):
        build()  # type: ignore[operator]


def test_agent_refuses_a_filter_that_is_not_callable() -> None:
    from getpatter import Patter
    from getpatter.stt.deepgram import DeepgramSTT
    from getpatter.tts.elevenlabs import ElevenLabsTTS

    with pytest.raises(PatterConfigError, match="audio_filter must be a callable"):
        Patter().agent(
            "x", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"), audio_filter="krisp"
        )
