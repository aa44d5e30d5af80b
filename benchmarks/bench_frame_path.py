"""Cost of one full 20 ms frame through the server's per-frame path, inbound and outbound, no sockets.

Run: ``python benchmarks/bench_frame_path.py [--frames 5000]``. Prints microseconds per frame (mean, p99)
and how many calls one core could carry at that cost (50 frames/s each way per call).

Paths (the same code the server runs per frame, minus the socket syscalls and websockets framing):

* realtime, mu-law pass-through: Twilio ``media`` JSON -> ``TwilioMediaCodec.parse`` -> the pass-through
  ``FormatConverter`` -> the engine's ``input_audio_buffer.append`` text; back: the engine's audio delta
  (base64) -> bytes -> ``TwilioMediaCodec.audio`` message.
* pipeline, STT pass-through: Twilio ``media`` -> parse -> mu-law 8k -> PCM16 16k (for the VAD) ->
  ``VoiceActivity.feed``; the raw mu-law goes to the STT. Back: TTS mu-law -> ``TwilioMediaCodec.audio``.
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


def _measure(step: Callable[[int], object], n: int) -> tuple[float, float]:
    for i in range(min(200, n)):
        step(i)
    timings = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        step(i)
        timings[i] = clock() - start
    return float(timings.mean() / 1000), float(np.percentile(timings, 99) / 1000)


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

    def inbound_realtime(i: int) -> object:
        event = codec.parse(messages[i])
        assert isinstance(event, MediaAudio)
        return APPEND_HEAD + base64.b64encode(passthrough.process(event.payload)) + b'"}'

    def outbound_realtime(i: int) -> object:
        delta = orjson.loads(deltas[i])
        return codec.audio(base64.b64decode(delta["delta"]))

    def inbound_pipeline(i: int) -> object:
        event = codec.parse(messages[i])
        assert isinstance(event, MediaAudio)
        pcm = to_pcm.process(event.payload)
        activity.feed(pcm)
        return event.payload  # the STT gets the mu-law bytes untouched

    def outbound_pipeline(i: int) -> object:
        return codec.audio(frames[i])

    def full_realtime(i: int) -> object:
        return inbound_realtime(i), outbound_realtime(i)

    def full_pipeline(i: int) -> object:
        return inbound_pipeline(i), outbound_pipeline(i)

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
        ("pipeline inbound (parse + 8k->16k + VAD)", inbound_pipeline),
        ("pipeline outbound (media msg)", outbound_pipeline),
        ("pipeline full frame in+out", full_pipeline),
        ("playout msg, chunk_ms=20 (per 20 ms)", chunks(20)),
        ("playout msg, chunk_ms=60 (per 20 ms)", chunks(60)),
        ("playout msg, chunk_ms=100 (per 20 ms)", chunks(100)),
    ]
    print(f"{'path':44} {'mean us':>9} {'p99 us':>9} {'calls/core':>11}   ({n} frames)")
    for name, step in paths:
        mean_us, p99_us = _measure(step, n)
        calls = 20_000 / mean_us if mean_us > 0 else float("inf")
        print(f"{name:44} {mean_us:9.2f} {p99_us:9.2f} {calls:11.0f}")
    print("(excludes websockets framing and socket syscalls: ~15-25 us per message each way on this machine)")


if __name__ == "__main__":
    main()
