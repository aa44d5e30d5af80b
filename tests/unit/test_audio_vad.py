"""EnergyVAD and VoiceActivity on synthetic signals; all times are stream ms, exact to the window."""

from __future__ import annotations

import numpy as np
import pytest

from getpatter.audio import VAD, EnergyVAD, SpeechEnd, SpeechStart, VadEvent, VoiceActivity
from getpatter.audio.errors import AudioConfigError

RATE = 16000
FRAME = 640  # 20 ms of PCM16 at 16 kHz


def samples(ms: int) -> int:
    return RATE * ms // 1000


def sine(ms: int, dbfs: float, freq: float = 440.0) -> np.ndarray:
    n = np.arange(samples(ms))
    return 10 ** (dbfs / 20) * 32768 * np.sqrt(2) * np.sin(2 * np.pi * freq * n / RATE)


def hum(ms: int, dbfs: float) -> np.ndarray:
    t = np.arange(samples(ms)) / RATE
    wave = np.sin(2 * np.pi * 60 * t) + 0.5 * np.sin(2 * np.pi * 120 * t) + 0.3 * np.sin(2 * np.pi * 180 * t)
    return wave / np.sqrt(np.mean(wave**2)) * 10 ** (dbfs / 20) * 32768


def noise(ms: int, dbfs: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(samples(ms)) * 10 ** (dbfs / 20) * 32768


def silence(ms: int) -> np.ndarray:
    return np.zeros(samples(ms))


def pcm(*parts: np.ndarray) -> bytes:
    return np.clip(np.rint(np.concatenate(parts)), -32768, 32767).astype("<i2").tobytes()


def feed_frames(activity: VoiceActivity, data: bytes) -> list[tuple[float, VadEvent]]:
    """Feed 20 ms frames; pair each event with the stream time at which it was reported."""
    out: list[tuple[float, VadEvent]] = []
    for i in range(0, len(data), FRAME):
        out += [(activity.stream_ms, e) for e in activity.feed(data[i : i + FRAME])]
    return out


def test_tone_burst_start_and_end_are_exact_and_reported_after_the_hangovers() -> None:
    data = pcm(silence(1000), sine(800, -20), silence(1000))
    activity = VoiceActivity()
    events = feed_frames(activity, data)
    assert events == [
        (1060.0, SpeechStart(onset_ms=1000.0)),  # reported once 60 ms were voiced
        (2300.0, SpeechEnd(end_ms=1800.0, duration_ms=800.0)),  # reported after 500 ms of silence
    ]
    assert not activity.speaking


def test_events_do_not_depend_on_chunk_size() -> None:
    data = pcm(silence(500), sine(400, -25), silence(700), sine(300, -18, 1000.0), silence(800))
    reference = VoiceActivity().feed(data)
    assert reference == [
        SpeechStart(500.0),
        SpeechEnd(900.0, 400.0),
        SpeechStart(1600.0),
        SpeechEnd(1900.0, 300.0),
    ]
    rng = np.random.default_rng(1)
    activity, got, i = VoiceActivity(), [], 0
    while i < len(data):
        k = int(rng.integers(1, 1500))  # odd sizes split samples and windows
        got += activity.feed(data[i : i + k])
        i += k
    assert got == reference


def test_speaking_property_follows_events() -> None:
    activity = VoiceActivity()
    activity.feed(pcm(silence(100), sine(100, -20)))
    assert activity.speaking
    activity.feed(pcm(silence(600)))
    assert not activity.speaking


def test_blip_shorter_than_min_speech_is_ignored_but_exactly_min_speech_counts() -> None:
    assert VoiceActivity().feed(pcm(silence(300), sine(40, -20), silence(1000))) == []
    assert VoiceActivity().feed(pcm(silence(300), sine(60, -20), silence(1000))) == [
        SpeechStart(300.0),
        SpeechEnd(360.0, 60.0),
    ]


def test_pause_shorter_than_min_silence_keeps_one_segment() -> None:
    data = pcm(silence(200), sine(300, -20), silence(480), sine(200, -20), silence(600))
    assert VoiceActivity().feed(data) == [SpeechStart(200.0), SpeechEnd(1180.0, 980.0)]
    short_hangover = VoiceActivity(min_silence_ms=200).feed(data)
    assert short_hangover == [
        SpeechStart(200.0),
        SpeechEnd(500.0, 300.0),
        SpeechStart(980.0),
        SpeechEnd(1180.0, 200.0),
    ]


def test_steady_low_white_noise_never_triggers() -> None:
    activity = VoiceActivity()
    assert activity.feed(pcm(noise(10_000, -52))) == []
    assert isinstance(activity.vad, EnergyVAD)
    assert activity.vad.noise_floor_dbfs == pytest.approx(-52, abs=1.5)


def test_steady_low_hum_never_triggers() -> None:
    assert VoiceActivity().feed(pcm(hum(10_000, -50))) == []


def test_loud_hum_is_absorbed_by_the_noise_floor_and_speech_over_it_is_found() -> None:
    activity = VoiceActivity()
    events = activity.feed(pcm(hum(10_000, -30)))
    # A hum from the first sample reads as speech until the floor has climbed to it (~8 dB/s), then never.
    assert events[0] == SpeechStart(0.0)
    assert isinstance(events[1], SpeechEnd) and events[1].end_ms < 3000
    assert len(events) == 2
    assert activity.vad.noise_floor_dbfs == pytest.approx(-30, abs=1)  # type: ignore[attr-defined]
    # A louder voice over the hum is still detected, to the window.
    over = hum(1600, -30) + np.concatenate([silence(300), sine(700, -12, 800.0), silence(600)])
    assert activity.feed(pcm(over)) == [SpeechStart(10_300.0), SpeechEnd(11_000.0, 700.0)]


def test_speech_over_line_noise() -> None:
    background = noise(3000, -50, seed=5)
    voice = np.concatenate([silence(1000), sine(1000, -22), silence(1000)])
    assert VoiceActivity().feed(pcm(background + voice)) == [SpeechStart(1000.0), SpeechEnd(2000.0, 1000.0)]


def test_energy_vad_probability_ramp_and_gate() -> None:
    vad = EnergyVAD(min_level_dbfs=-70.0)
    window = np.rint(sine(20, -48.0, 800.0)).astype(np.int16)  # 12 dB above the -60 dBFS initial floor
    assert vad.speech_probability(window) == pytest.approx((12 - 6) / 9, abs=0.01)
    assert vad.last_level_dbfs == pytest.approx(-48.0, abs=0.05)
    gated = EnergyVAD()  # default gate -45 dBFS: the same window is never speech
    assert gated.speech_probability(window) == 0.0
    loud = np.rint(sine(20, -20.0, 800.0)).astype(np.int16)
    assert gated.speech_probability(loud) == 1.0
    assert gated.speech_probability(np.zeros(320, np.int16)) == 0.0
    assert gated.noise_floor_dbfs == -60.0  # digital silence cannot drag the floor below its minimum
    gated.reset()
    assert gated.noise_floor_dbfs == -60.0
    assert gated.speech_probability(np.zeros(0, np.int16)) == 0.0


class NonZeroWindowVAD(VAD):
    """A 512-sample (Silero-sized) detector: voiced when the window has any non-zero sample."""

    def __init__(self) -> None:
        self.windows_seen: list[int] = []

    @property
    def window_samples(self) -> int:
        return 512

    def speech_probability(self, window: np.ndarray) -> float:  # type: ignore[override]
        self.windows_seen.append(len(window))
        return 1.0 if np.any(window) else 0.0

    def reset(self) -> None:
        self.windows_seen.clear()


def test_any_vad_plugs_in_and_timing_follows_its_window() -> None:
    vad = NonZeroWindowVAD()
    activity = VoiceActivity(vad, min_speech_ms=60, min_silence_ms=100)
    win = np.ones(512)
    data = pcm(np.zeros(512 * 3), win, win, win, np.zeros(512 * 4))
    assert activity.feed(data[:1001]) + activity.feed(data[1001:]) == [
        SpeechStart(96.0),  # window 3 starts at 3 * 32 ms; two 32 ms windows satisfy 60 ms
        SpeechEnd(192.0, 96.0),  # four silent windows (128 ms >= 100 ms) close it
    ]
    assert set(vad.windows_seen) == {512}
    assert activity.stream_ms == 320.0


def test_finish_reports_a_pending_end_and_reset_restarts_the_clock() -> None:
    activity = VoiceActivity()
    activity.feed(pcm(silence(100), sine(300, -20), silence(100)))
    assert activity.finish() == [SpeechEnd(400.0, 300.0)]
    assert activity.finish() == []
    activity.reset()
    assert activity.stream_ms == 0.0
    assert activity.feed(pcm(sine(100, -20))) == [SpeechStart(0.0)]


def test_threshold_is_applied_to_the_probability() -> None:
    data = pcm(silence(200), sine(400, -50), silence(800))  # 10 dB over the floor: p ~ 0.44
    quiet_gate = EnergyVAD(min_level_dbfs=-70.0)
    assert VoiceActivity(quiet_gate).feed(data) == []
    assert VoiceActivity(EnergyVAD(min_level_dbfs=-70.0), threshold=0.3).feed(data)[0] == SpeechStart(200.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"min_speech_ms": -1}, "min_speech_ms"),
        ({"min_silence_ms": -5}, "min_silence_ms"),
    ],
)
def test_voice_activity_config_errors(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(AudioConfigError, match=match):
        VoiceActivity(**kwargs)  # type: ignore[arg-type]


def test_energy_vad_config_errors() -> None:
    with pytest.raises(AudioConfigError, match="snr_high_db"):
        EnergyVAD(snr_low_db=10, snr_high_db=5)
    with pytest.raises(AudioConfigError, match="floor_rise_db_per_s"):
        EnergyVAD(floor_rise_db_per_s=0)
    with pytest.raises(AudioConfigError, match="window_samples"):
        EnergyVAD(window_samples=4)


def test_the_detector_sets_the_end_of_turn_hangover_unless_one_is_given() -> None:
    class QuickToEnd(NonZeroWindowVAD):
        end_of_turn_silence_ms = 100.0

    win = np.ones(512)
    data = pcm(win, win, np.zeros(512 * 10))  # 64 ms of voice, then 320 ms of silence
    assert VoiceActivity(QuickToEnd(), min_speech_ms=60).feed(data) == [
        SpeechStart(0.0),
        SpeechEnd(64.0, 64.0),  # reported after four silent windows (128 ms >= 100 ms)
    ]
    assert VoiceActivity(QuickToEnd(), min_speech_ms=60, min_silence_ms=500).feed(data) == [SpeechStart(0.0)]
    assert EnergyVAD().end_of_turn_silence_ms == 500.0


def test_energy_vad_at_8k_gives_the_same_events_as_at_16k_on_the_same_sound() -> None:
    """The pipeline runs the VAD at a mu-law carrier's 8 kHz (no resampling): 160-sample windows, and
    speech start/end at the same stream times as the 16 kHz detector on the same signal."""

    def signal(rate: int) -> bytes:
        t = np.arange(int(rate * 1.5)) / rate
        wave = np.where((t >= 0.3) & (t < 0.9), 8000 * np.sin(2 * np.pi * 300 * t), 0.0)
        noise = np.random.default_rng(1).standard_normal(t.size) * 20
        return np.clip(np.rint(wave + noise), -32768, 32767).astype("<i2").tobytes()

    vad8 = EnergyVAD(sample_rate=8000)
    assert (vad8.sample_rate, vad8.window_samples) == (8000, 160)
    events = {rate: VoiceActivity(EnergyVAD(sample_rate=rate)).feed(signal(rate)) for rate in (8000, 16000)}
    assert events[8000] == events[16000]
    assert [type(e) for e in events[8000]] == [SpeechStart, SpeechEnd]
    start = events[8000][0]
    assert isinstance(start, SpeechStart) and start.onset_ms == 300.0
    with pytest.raises(AudioConfigError, match="sample_rate"):
        EnergyVAD(sample_rate=11025)


def _speech_over_noise_8k() -> bytes:
    rate = 8000
    t = np.arange(int(rate * 2.6)) / rate
    wave = np.where((t >= 0.3) & (t < 0.9), 6000 * np.sin(2 * np.pi * 300 * t), 0.0)
    wave += np.where((t >= 1.6) & (t < 1.9), 2500 * np.sin(2 * np.pi * 700 * t), 0.0)
    noise = np.random.default_rng(2).standard_normal(t.size) * 30
    return np.clip(np.rint(wave + noise), -32768, 32767).astype("<i2").tobytes()


def test_mulaw_codes_give_the_events_of_their_decoded_pcm_in_any_chunks() -> None:
    """The phone path scores mu-law codes directly (squares table, no decode): same windows, same
    probabilities as the decoded PCM, so the same events at the same times, however the codes arrive."""
    from getpatter.audio.g711 import mulaw_to_pcm16, pcm16_to_mulaw

    codes = pcm16_to_mulaw(_speech_over_noise_8k())
    decoded = mulaw_to_pcm16(codes)
    expected = VoiceActivity(EnergyVAD(sample_rate=8000)).feed(decoded)
    assert [type(e) for e in expected] == [SpeechStart, SpeechEnd, SpeechStart, SpeechEnd]
    for chunk in (160, 160 * 3, 97):  # carrier frames, 60 ms messages, ragged pieces
        activity = VoiceActivity(EnergyVAD(sample_rate=8000))
        events: list[VadEvent] = []
        for i in range(0, len(codes), chunk):
            events += activity.feed_mulaw(codes[i : i + chunk])
        assert events == expected
        assert activity.stream_ms == 2600.0


def test_mulaw_scores_match_the_decoded_window_and_other_detectors_get_decoded_samples() -> None:
    from getpatter.audio.g711 import mulaw_decode, pcm16_to_mulaw

    codes = np.frombuffer(pcm16_to_mulaw(_speech_over_noise_8k()), dtype=np.uint8)
    by_codes, by_pcm = EnergyVAD(sample_rate=8000), EnergyVAD(sample_rate=8000)
    for i in range(0, codes.size, 160):
        window = codes[i : i + 160]
        assert by_codes.speech_probability_mulaw(window) == pytest.approx(
            by_pcm.speech_probability(mulaw_decode(window)), abs=1e-6
        )
        assert by_codes.last_level_dbfs == pytest.approx(by_pcm.last_level_dbfs, abs=1e-4)

    # A detector with no mu-law scorer of its own is given the decoded samples (the base class's default).
    class Decoded8k(NonZeroWindowVAD):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[np.ndarray] = []

        @property
        def sample_rate(self) -> int:
            return 8000

        def speech_probability(self, window: np.ndarray) -> float:  # type: ignore[override]
            self.seen.append(window.copy())
            return super().speech_probability(window)

    vad = Decoded8k()
    activity = VoiceActivity(vad, min_speech_ms=0, min_silence_ms=0)
    activity.feed_mulaw(bytes([0xFF] * 512 + [0x00] * 512))  # 0xFF decodes to 0, 0x00 to -32124
    assert [(w.dtype, int(w.min()), int(w.max())) for w in vad.seen] == [
        (np.dtype("<i2"), 0, 0),
        (np.dtype("<i2"), -32124, -32124),
    ]
    # mu-law input is 8 kHz: a 16 kHz detector cannot be fed it.
    with pytest.raises(AudioConfigError, match="8000"):
        VoiceActivity(EnergyVAD()).feed_mulaw(bytes(320))
