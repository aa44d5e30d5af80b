"""Offline STT: word error rate and decode time of ``LocalSTT`` over a 10 s window against the full 30 s.

Twenty-five call-centre sentences, spoken by Pico (``LocalTTS``) and, when the ``piper`` extra is
installed, by Piper's "joe" voice, each sent through the phone path (8 kHz mu-law and back to 16 kHz)
with 300 ms of silence before and 500 ms after, like a VAD-cut turn. Needs the ``local`` extra; nothing
is downloaded.

    python benchmarks/bench_local_stt.py                 # both windows, every sentence
    python benchmarks/bench_local_stt.py --short         # 4 sentences, Pico only
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time

from getpatter.audio.convert import FormatConverter
from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.local import LocalSTT, LocalTTS
from getpatter.tts.base import TTS

SENTENCES = (
    "Hi, what are your opening hours?",
    "How much does a cleaning cost?",
    "Can I book an appointment for Thursday at 3 pm?",
    "That is great, goodbye!",
    "What are your opening hours?",
    "Can I book an appointment for Friday?",
    "Thank you, goodbye.",
    "My account number is four five six seven eight.",
    "No, I said Thursday at three, not Friday.",
    "I would like to speak with someone about my last bill.",
    "Hello, I would like to book an appointment for next Tuesday afternoon.",
    "Can you tell me what time your store opens tomorrow morning?",
    "Yes.",
    "No thanks.",
    "I need to cancel my order please.",
    "My tooth really hurts, can I come in today?",
    "Please send the invoice to my email address.",
    "What is the status of my delivery?",
    "I moved last month and need to update my address.",
    "Could you repeat that more slowly?",
    "The package was damaged when it arrived, and I want a refund.",
    "Is there parking near the clinic?",
    "My name is Sarah Johnson and my date of birth is March fifth.",
    "Okay.",
    "I'll call back later.",
)


def words(text: str) -> list[str]:
    text = text.lower().replace("3pm", "3 pm").replace("p.m.", "pm")
    return re.sub(r"[^a-z0-9 ]", " ", text).split()


def edits(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[:], i
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1]


async def phone_audio(voice: TTS, text: str) -> bytes:
    pcm = b"".join([chunk async for chunk in voice.synthesize(text)])
    down, up = FormatConverter(voice.audio_format, MULAW_8K), FormatConverter(MULAW_8K, PCM16_16K)
    wire = down.process(pcm) + down.flush()
    return bytes(16000 * 2 * 3 // 10) + up.process(wire) + up.flush() + bytes(16000)


async def corpus(short: bool) -> list[tuple[str, bytes]]:
    voices: list[TTS] = [LocalTTS(gain_db=0)]
    if not short:
        try:
            from getpatter.local import PiperTTS

            voices.append(PiperTTS(gain_db=0))
        except Exception as exc:  # the piper extra is optional
            print(f"(Piper voice skipped: {exc})")
    lines = SENTENCES[:4] if short else SENTENCES
    return [(line, await phone_audio(voice, line)) for voice in voices for line in lines]


def run(label: str, stt: LocalSTT, audio: list[tuple[str, bytes]]) -> None:
    stt.transcribe(audio[0][1])  # warm
    errors = total = 0
    times: list[float] = []
    for ref, pcm in audio:
        started = time.perf_counter()
        hyp = stt.transcribe(pcm)
        times.append((time.perf_counter() - started) * 1000.0)
        errors += edits(words(ref), words(hyp))
        total += len(words(ref))
    print(
        f"{label:22s} WER {100.0 * errors / total:4.1f} %  decode median {statistics.median(times):5.0f} ms"
        f"  max {max(times):5.0f} ms  ({len(audio)} turns, loadavg {os.getloadavg()[0]:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="4 sentences, Pico only")
    args = parser.parse_args()
    audio = asyncio.run(corpus(args.short))
    run("window_s=10 (default)", LocalSTT(), audio)
    run("window_s=None (30 s)", LocalSTT(window_s=None), audio)


if __name__ == "__main__":
    main()
