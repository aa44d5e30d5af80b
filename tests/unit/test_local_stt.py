"""The offline STT's fast paths: early (speculative) decoding and its configuration refusals.

The recogniser handed to :class:`SpeculativeStream` is a plain coroutine here (it is a parameter, like
the HTTP upload of the batch recognisers): it records what it was asked to decode.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from getpatter.errors import PatterConfigError
from getpatter.local import LocalSTT
from getpatter.local._speculate import SpeculativeStream
from getpatter.local._window import _compression_ratio
from getpatter.stt.base import Transcript
from tests.fakes._patience import patient

FRAME = 640  # 20 ms of PCM16 at 16 kHz


def voice(ms: int) -> list[bytes]:
    t = np.arange(FRAME // 2) / 16000.0
    frame = (np.sin(2 * np.pi * 220.0 * t) * 8000).astype("<i2").tobytes()
    return [frame] * (ms // 20)


def silence(ms: int) -> list[bytes]:
    return [bytes(FRAME)] * (ms // 20)


class Recogniser:
    def __init__(self) -> None:
        self.calls: list[int] = []  # bytes of audio per decode

    async def __call__(self, pcm: bytes) -> str:
        self.calls.append(len(pcm))
        return f"{len(pcm)} bytes"


async def feed(stream: SpeculativeStream, frames: list[bytes]) -> None:
    for frame in frames:
        await stream.send(frame)
    await asyncio.sleep(0)  # let a speculative decode start


async def final(stream: SpeculativeStream) -> Transcript:
    event = await asyncio.wait_for(anext(stream), patient(5))
    assert isinstance(event, Transcript)
    return event


async def test_a_decode_started_in_the_silence_answers_the_turn() -> None:
    recognise = Recogniser()
    stream = SpeculativeStream(recognise, after_silence_ms=200, label="test", max_utterance_s=30)
    await feed(stream, voice(600) + silence(200))
    assert len(recognise.calls) == 1  # started before the turn was handed over
    await feed(stream, silence(240))  # the VAD's hangover runs on
    await stream.finalize()
    first = await final(stream)
    assert recognise.calls == [recognise.calls[0]]  # no second decode
    assert first.text == f"{recognise.calls[0]} bytes" and first.end_of_turn
    assert stream.reused == 1
    await stream.close()


async def test_speech_after_the_early_decode_is_decoded_in_full() -> None:
    recognise = Recogniser()
    stream = SpeculativeStream(recognise, after_silence_ms=200, label="test", max_utterance_s=30)
    await feed(stream, voice(400) + silence(240))  # a pause mid-sentence: an early decode starts
    await feed(stream, voice(400) + silence(100))  # ... but the caller goes on
    await stream.finalize()
    text = (await final(stream)).text
    early, full = recognise.calls
    assert full > early and text == f"{full} bytes"  # the whole sentence, not its first half
    assert stream.reused == 0
    await stream.close()


async def test_short_pauses_do_not_start_early_decodes() -> None:
    recognise = Recogniser()
    stream = SpeculativeStream(recognise, after_silence_ms=200, label="test", max_utterance_s=30)
    await feed(stream, voice(300) + silence(160) + voice(300) + silence(100))
    assert recognise.calls == []
    await stream.finalize()
    assert (await final(stream)).text and len(recognise.calls) == 1
    await stream.close()


def test_a_repetition_loop_compresses_far_better_than_a_sentence() -> None:
    assert _compression_ratio("What are your opening hours? " * 8) > 2.4
    assert _compression_ratio("Can I book an appointment for Thursday at 3 pm?") < 2.4


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"window_s": 5.0}, "window_s"),
        ({"window_s": 31.0}, "window_s"),
        ({"speculate_after_ms": 0.0}, "speculate_after_ms"),
    ],
)
def test_local_stt_refuses_settings_that_would_break_recognition(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(PatterConfigError, match=name):
        LocalSTT(**kwargs)  # type: ignore[arg-type]


def test_silero_refuses_an_end_of_turn_it_cannot_keep() -> None:
    from getpatter.local import SileroVAD

    with pytest.raises(PatterConfigError, match="end_of_turn_silence_ms"):
        SileroVAD(end_of_turn_silence_ms=20)


def test_a_turn_longer_than_the_window_is_left_to_the_full_window() -> None:
    from getpatter.local._window import decode_window

    ten_seconds = np.zeros(16000 * 10, dtype=np.float32)
    # None before any model work (there is no model here): the caller decodes over 30 s instead
    assert decode_window(None, ten_seconds, window_s=10.0, language="en", beam_size=1) is None
