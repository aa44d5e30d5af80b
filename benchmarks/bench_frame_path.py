"""Cost of one full 20 ms frame through the server's per-frame path, inbound and outbound, no sockets.

Run: ``python benchmarks/bench_frame_path.py [--frames 5000]``. Prints microseconds per frame (mean, p99)
and how many calls one core could carry at that cost (50 frames/s each way per call).

Paths (the same code the server runs per frame, minus the socket syscalls and websockets framing):

* realtime, mu-law pass-through: Twilio ``media`` JSON -> ``TwilioMediaCodec.parse`` -> the pass-through
  ``FormatConverter`` -> the engine's ``input_audio_buffer.append`` text; back: the engine's audio delta
  (base64) -> bytes -> ``TwilioMediaCodec.audio`` message.
* pipeline, now (issue 19; README defaults and ``for_twilio()`` alike, both carrier-native): Twilio
  ``media`` -> parse -> mu-law decoded to PCM16 **8k** (a table) -> ``VoiceActivity`` on ``EnergyVAD(8000)``;
  the raw mu-law goes to the STT. Back: TTS ``ulaw_8000`` -> ``TwilioMediaCodec.audio``.
* pipeline, before issue 19: ``for_twilio()`` providers: parse -> mu-law 8k -> PCM16 16k (halfband
  resampler) -> VAD at 16k, raw mu-law to the STT; back as now. README defaults (``DeepgramSTT()``,
  ``ElevenLabsTTS()``): the same inbound, the 16k PCM to the STT; back: TTS ``pcm_16000`` -> PCM16 16k ->
  mu-law 8k -> media message.
* Not in these figures: the WebSocket send to the STT vendor (~20-40 us of websockets framing and one
  syscall per message), which the call layer now makes once per 40 ms instead of per 20 ms frame.
* outbound message building per 20 ms of audio for ``Playout(chunk_ms=20|60|100)``: fewer, larger messages.
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable

import numpy as np
import orjson

from getpatter.audio import MULAW_8K, PCM16_16K, FormatConverter, VoiceActivity, pcm16_to_mulaw
from getpatter.audio.format import AudioFormat
from getpatter.audio.vad import EnergyVAD
from getpatter.carriers.base import MediaAudio
from getpatter.carriers.twilio.media import TwilioMediaCodec

APPEND_HEAD = b'{"type":"input_audio_buffer.append","audio":"'


def _mulaw_frames(n: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    t = np.arange(n * 160)
    wave = 6000 * np.sin(2 * np.pi * 440 * t / 8000) + rng.standard_normal(t.size) * 800
    pcm = np.clip(np.rint(wave), -32768, 32767).astype("<i2").tobytes()
    mulaw = pcm16_to_mulaw(pcm)
    return [mulaw[i * 160 : (i + 1) * 160] for i in range(n)]


def _twilio_messages(frames: list[bytes]) -> list[str]:
    return [
        orjson.dumps(
            {
                "event": "media",
                "sequenceNumber": str(i + 2),
                "streamSid": "MZ" + "0" * 32,
                "media": {
                    "track": "inbound",
                    "chunk": str(i + 1),
                    "timestamp": str(i * 20),
                    "payload": base64.b64encode(f).decode(),
                },
            }
        ).decode()
        for i, f in enumerate(frames)
    ]


def _measure(step: Callable[[int], object], n: int, passes: int = 5) -> tuple[float, float]:
    """(mean, p99) in us of the best of ``passes`` passes over ``n`` frames (noise from a shared machine
    only ever adds time)."""
    for i in range(min(200, n)):
        step(i)
    clock = time.perf_counter_ns
    best: tuple[float, float] | None = None
    for _ in range(passes):
        timings = np.empty(n)
        for i in range(n):
            start = clock()
            step(i)
            timings[i] = clock() - start
        result = (float(timings.mean() / 1000), float(np.percentile(timings, 99) / 1000))
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=5000, help="frames per path (default 5000 = 100 s)")
    n: int = parser.parse_args().frames

    frames = _mulaw_frames(n)
    messages = _twilio_messages(frames)
    deltas = [
        orjson.dumps({"type": "response.output_audio.delta", "delta": base64.b64encode(f).decode()})
        for f in frames
    ]
    codec = TwilioMediaCodec("MZ" + "0" * 32)
    passthrough = FormatConverter(MULAW_8K, MULAW_8K)
    to_pcm = FormatConverter(MULAW_8K, PCM16_16K)
    activity = VoiceActivity()
    to_pcm8 = FormatConverter(MULAW_8K, AudioFormat("pcm16", 8000))
    activity8 = VoiceActivity(EnergyVAD(sample_rate=8000))
    tts_pcm16 = [to_pcm.process(f) for f in frames]  # what ElevenLabsTTS() pcm_16000 used to return
    from_tts = FormatConverter(PCM16_16K, MULAW_8K)

    def inbound_realtime(i: int) -> object:
        event = codec.parse(messages[i])
        assert isinstance(event, MediaAudio)
        return APPEND_HEAD + base64.b64encode(passthrough.process(event.payload)) + b'"}'

    def outbound_realtime(i: int) -> object:
        delta = orjson.loads(deltas[i])
        return codec.audio(base64.b64decode(delta["delta"]))

    activity_codes = VoiceActivity(EnergyVAD(sample_rate=8000))

    def inbound_pipeline(i: int) -> object:
        event = codec.parse(messages[i])
        assert isinstance(event, MediaAudio)
        activity_codes.feed_mulaw(event.payload)  # the VAD scores the codes (squares table)
        return event.payload  # the STT gets the mu-law bytes untouched

    def inbound_pipeline_decoded(i: int) -> object:
        event = codec.parse(messages[i])
        assert isinstance(event, MediaAudio)
        activity8.feed(to_pcm8.process(event.payload))
        return event.payload

    def inbound_pipeline_before(i: int) -> object:
        event = codec.parse(messages[i])
        assert isinstance(event, MediaAudio)
        pcm = to_pcm.process(event.payload)
        activity.feed(pcm)
        return pcm  # README defaults: the 16k PCM went to the STT (for_twilio: the mu-law)

    def outbound_pipeline(i: int) -> object:
        return codec.audio(frames[i])

    def outbound_pipeline_readme_before(i: int) -> object:
        return codec.audio(from_tts.process(tts_pcm16[i]))

    def full_realtime(i: int) -> object:
        return inbound_realtime(i), outbound_realtime(i)

    def full_pipeline(i: int) -> object:
        return inbound_pipeline(i), outbound_pipeline(i)

    def full_pipeline_native_before(i: int) -> object:
        return inbound_pipeline_before(i), outbound_pipeline(i)

    def full_pipeline_readme_before(i: int) -> object:
        return inbound_pipeline_before(i), outbound_pipeline_readme_before(i)

    audio_100ms = b"".join(frames[:5])

    def chunks(chunk_ms: int) -> Callable[[int], object]:
        size = 8 * chunk_ms
        per = chunk_ms // 20

        def build(i: int) -> object:  # one call = 20 ms of audio; a message every ``per`` calls
            return codec.audio(audio_100ms[:size]) if i % per == 0 else None

        return build

    paths: list[tuple[str, Callable[[int], object]]] = [
        ("realtime inbound (parse + append JSON)", inbound_realtime),
        ("realtime outbound (delta -> media msg)", outbound_realtime),
        ("realtime full frame in+out", full_realtime),
        ("pipeline inbound (parse + VAD on mu-law codes)", inbound_pipeline),
        ("earlier: inbound (parse + decode + VAD@8k)", inbound_pipeline_decoded),
        ("pipeline outbound (media msg)", outbound_pipeline),
        ("pipeline full frame in+out (both configs)", full_pipeline),
        ("before: inbound (parse + 8k->16k + VAD@16k)", inbound_pipeline_before),
        ("before: README outbound (16k->8k+mu-law)", outbound_pipeline_readme_before),
        ("before: full frame, for_twilio()", full_pipeline_native_before),
        ("before: full frame, README defaults", full_pipeline_readme_before),
        ("playout msg, chunk_ms=20 (per 20 ms)", chunks(20)),
        ("playout msg, chunk_ms=60 (per 20 ms)", chunks(60)),
        ("playout msg, chunk_ms=100 (per 20 ms)", chunks(100)),
    ]
    print(f"{'path':46} {'mean us':>9} {'p99 us':>9} {'calls/core':>11}   ({n} frames)")
    print("(mean is the best of 5 passes: the machine is shared, the slowest passes measure other work)")
    for name, step in paths:
        mean_us, p99_us = _measure(step, n)
        calls = 20_000 / mean_us if mean_us > 0 else float("inf")
        print(f"{name:46} {mean_us:9.2f} {p99_us:9.2f} {calls:11.0f}")
    print("(excludes websockets framing and socket syscalls: ~15-25 us per message each way on this machine)")


if __name__ == "__main__":
    main()
