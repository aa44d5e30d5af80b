"""``phone.agent(background_audio=...)``: ambience under the agent's speech and in its silences, on both
carriers, checked by decoding what the fake carrier received."""

from __future__ import annotations

import asyncio
import math
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from getpatter import PatterConfigError
from getpatter.audio.background import BackgroundAudioPlayer, BuiltinAudioClip
from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.audio.g711 import mulaw_decode
from tests.integration.harness import call_harness
from tests.integration.telnyx_harness import telnyx_harness

GREETING = "Hello, thanks for calling."
AMBIENCE_HZ = 2000.0
TTS_HZ = 440.0  # the fake TTS speaks a 440 Hz tone
CLIP_AMPLITUDE = 10000.0
VOLUME = 0.3


def _ambience_wav(path: Path) -> Path:
    t = np.arange(16000) / 16000  # one second, a whole number of cycles: loops seamlessly
    samples = (CLIP_AMPLITUDE * np.sin(2 * math.pi * AMBIENCE_HZ * t)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(samples.tobytes())
    return path


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def _amplitude(window: np.ndarray[Any, Any], freq: float, rate: int) -> float:
    t = np.arange(window.size) / rate
    return float(2 * abs(np.dot(window, np.exp(-2j * math.pi * freq * t))) / window.size)


def _windows(samples: np.ndarray[Any, Any], rate: int) -> list[np.ndarray[Any, Any]]:
    n = rate // 10  # 100 ms
    return [samples[i : i + n].astype(np.float64) for i in range(0, samples.size - n + 1, n)]


def _check_ambience_everywhere(samples: np.ndarray[Any, Any], rate: int) -> None:
    windows = _windows(samples, rate)
    assert len(windows) >= 20
    expected = CLIP_AMPLITUDE * VOLUME
    ambience = [_amplitude(w, AMBIENCE_HZ, rate) for w in windows]
    speech = [_amplitude(w, TTS_HZ, rate) for w in windows]
    assert all(0.8 * expected < a < 1.2 * expected for a in ambience), (min(ambience), max(ambience))
    spoken = [i for i, s in enumerate(speech) if s > expected]
    silent = [i for i, s in enumerate(speech) if s < 0.05 * expected]
    assert len(spoken) >= 5 and len(silent) >= 5  # ambience under speech and in the silences


def _check_no_gaps(media: list[tuple[float, int]], bytes_per_second: int) -> None:
    """The carrier was never starved: the audio sent covers the wall time it was sent over."""
    span = media[-1][0] - media[0][0]
    audio_s = sum(size for _, size in media[:-1]) / bytes_per_second
    assert audio_s >= 0.8 * span, (audio_s, span)


async def test_twilio_call_carries_ambience_under_speech_and_silence(tmp_path: Path) -> None:
    player = BackgroundAudioPlayer(_ambience_wav(tmp_path / "room.wav"), volume=VOLUME, loop=True)
    async with call_harness(
        utterances=["What time is it?"], replies=["It is noon."], agent_kwargs={"background_audio": player}
    ) as h:
        call = await h.dial()
        await _until(lambda: len(call.marks_echoed) >= 1)  # the greeting was heard
        await call.say_tone(500)
        await _until(lambda: len(call.marks_echoed) >= 2)  # and the reply
        sent = len(call.agent_audio_mulaw())
        await _until(lambda: len(call.agent_audio_mulaw()) >= sent + 8 * 600)  # ambience goes on
        await call.hangup()
        await h.wait_ended()

    assert not any(m.cleared for m in call.marks_echoed)
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "What time is it?"},
        {"role": "assistant", "text": "It is noon."},
    ]
    audio = mulaw_decode(np.frombuffer(call.agent_audio_mulaw(), dtype=np.uint8))
    _check_ambience_everywhere(audio, MULAW_8K.sample_rate)
    media = [
        (r.time, len(r.payload)) for r in call.received if r.kind == "media" and isinstance(r.payload, bytes)
    ]
    _check_no_gaps(media, 8000)


async def test_telnyx_call_carries_ambience_under_speech_and_silence(tmp_path: Path) -> None:
    player = BackgroundAudioPlayer(_ambience_wav(tmp_path / "room.wav"), volume=VOLUME, loop=True)
    async with telnyx_harness(
        utterances=["What time is it?"], replies=["It is noon."], agent_kwargs={"background_audio": player}
    ) as h:
        call = await h.dial()
        await _until(lambda: len(call.marks_echoed) >= 1)
        await call.say_tone(500)
        await _until(lambda: len(call.marks_echoed) >= 2)
        sent = len(call.agent_audio())
        await _until(lambda: len(call.agent_audio()) >= sent + 32 * 600)
        await call.hangup()
        await h.wait_ended()

    assert [e["text"] for e in h.ended[0]["transcript"]] == [GREETING, "What time is it?", "It is noon."]
    audio = np.frombuffer(call.agent_audio(), dtype="<i2")
    _check_ambience_everywhere(audio, PCM16_16K.sample_rate)
    media = [
        (r.time, len(r.payload)) for r in call.received if r.kind == "media" and isinstance(r.payload, bytes)
    ]
    _check_no_gaps(media, 32000)


async def test_barge_in_still_clears_and_the_ambience_resumes(tmp_path: Path) -> None:
    player = BackgroundAudioPlayer(_ambience_wav(tmp_path / "room.wav"), volume=VOLUME, loop=True)
    long_reply = "Let me tell you all about our opening hours on every single day of the week in detail."
    async with call_harness(
        utterances=["Hours?", "Stop"],
        replies=[long_reply, "Sure."],
        first_message="",
        agent_kwargs={"background_audio": player},
    ) as h:
        call = await h.dial()
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await _until(lambda: len(h.tts.texts) >= 1)
        base = len(call.agent_audio_mulaw())
        await _until(lambda: len(call.agent_audio_mulaw()) >= base + 8 * 600)  # the reply is playing
        await call.say_tone(800)  # barge in
        await _until(lambda: any(r.kind == "clear" for r in call.received))
        cleared_at = next(i for i, r in enumerate(call.received) if r.kind == "clear")
        await _until(lambda: sum(r.kind == "media" for r in call.received[cleared_at:]) >= 10)
        await call.hangup()
        await h.wait_ended()

    first_answer = h.ended[0]["transcript"][1]["text"]
    assert first_answer != long_reply and long_reply.startswith(first_answer)  # only what was heard
    after = b"".join(
        r.payload for r in call.received[cleared_at:] if r.kind == "media" and isinstance(r.payload, bytes)
    )
    tail = mulaw_decode(np.frombuffer(after, dtype=np.uint8))
    assert _amplitude(tail[:800].astype(np.float64), AMBIENCE_HZ, 8000) > 0.8 * CLIP_AMPLITUDE * VOLUME


def test_builtin_clips_and_bad_sources(tmp_path: Path) -> None:
    for clip in BuiltinAudioClip:
        mixer = BackgroundAudioPlayer(clip, volume=0.2, loop=True).mixer(MULAW_8K)
        ambience = mulaw_decode(np.frombuffer(mixer.fill(8000), dtype=np.uint8)).astype(np.float64)
        assert 50 < np.sqrt(np.mean(ambience**2)) < 0.2 * 32768  # audible, and under the volume cap
    once = BackgroundAudioPlayer(_ambience_wav(tmp_path / "a.wav"), volume=0.5).mixer(PCM16_16K)
    once.fill(32000)  # the whole clip
    assert once.finished and once.mix(b"\x01\x00" * 10) == b"\x01\x00" * 10
    with pytest.raises(PatterConfigError, match="no such file"):
        BackgroundAudioPlayer(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(PatterConfigError, match="not a readable WAV"):
        BackgroundAudioPlayer(tmp_path / "bad.wav")
    with pytest.raises(PatterConfigError, match="volume"):
        BackgroundAudioPlayer(BuiltinAudioClip.HOLD_MUSIC, volume=2)
    from getpatter import Patter
    from getpatter.stt.deepgram import DeepgramSTT
    from getpatter.tts.elevenlabs import ElevenLabsTTS

    with pytest.raises(PatterConfigError, match="background_audio must be a BackgroundAudioPlayer"):
        Patter().agent(
            "x", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"), background_audio="x.wav"
        )
