"""Turn assembly on virtual time: when the caller's turn is over, and speech that resumes before it is."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import numpy as np

from getpatter.audio.vad import SpeechEnd, SpeechStart, VoiceActivity
from getpatter.call.stt_link import ResilientSTTStream
from getpatter.call.turns import FINALIZE_GRACE_S, FINALIZE_WAIT_S, TurnAssembler
from getpatter.stt.base import Transcript
from tests.unit._vendors import ScriptedSTT, ScriptedSTTStream
from tests.unit._virtual_clock import VirtualClock

FALLBACK_MS = 700


def voice(ms: int) -> bytes:
    """A steady tone at -20 dBFS (PCM16 16 kHz): speech as far as the energy VAD is concerned."""
    n = np.arange(16 * ms)
    wave = 0.1 * 32767 * np.sin(2 * np.pi * 440 * n / 16000)
    return wave.astype("<i2").tobytes()


def quiet(ms: int) -> bytes:
    return bytes(32 * ms)


class Turns:
    """A TurnAssembler wired to a scripted recogniser through the real STT link, on virtual time."""

    def __init__(self, assembler: TurnAssembler, stream: ScriptedSTTStream, vad: VoiceActivity, clock: Any):
        self.assembler = assembler
        self.stream = stream
        self.vad = vad
        self.clock = clock

    def hear(self, pcm: bytes) -> list[object]:
        """Caller audio through the VAD, reporting its speech edges to the assembler as the pipeline does."""
        events = self.vad.feed(pcm)
        for event in events:
            if isinstance(event, SpeechStart):
                self.assembler.speech_started()
            elif isinstance(event, SpeechEnd):
                self.assembler.speech_ended()
        return events

    def pause(self) -> None:
        """Quiet until the VAD's hangover ends the caller's speech (bounded: a VAD that never ends fails)."""
        for _ in range(200):
            if not self.vad.speaking:
                return
            self.hear(quiet(20))
        raise AssertionError("the VAD never heard the caller stop")

    async def final(self, text: str, *, end_of_turn: bool = False) -> None:
        await self.assembler.on_transcript(Transcript(text, is_final=True, end_of_turn=end_of_turn))


@asynccontextmanager
async def turns(*, vad_driven: bool) -> Any:
    clock = VirtualClock()
    stt = ScriptedSTT(vad_driven=vad_driven)
    link = ResilientSTTStream(stt, clock=clock)
    await link.start()
    commits: list[str] = []

    async def commit(text: str) -> None:
        commits.append(text)

    vad = VoiceActivity()
    assembler = TurnAssembler(
        stream=link, vad=vad, vad_driven=vad_driven, fallback_ms=FALLBACK_MS, commit=commit, clock=clock
    )
    try:
        yield Turns(assembler, stt.streams[0], vad, clock), commits
    finally:
        await assembler.close()
        await link.close()


async def test_the_vendors_end_of_turn_commits_at_once() -> None:
    async with turns(vad_driven=False) as (t, commits):
        await t.final("I would like")
        assert commits == []
        await t.final("a table for two.", end_of_turn=True)
        assert commits == ["I would like a table for two."]


async def test_a_silent_streaming_stt_is_asked_to_finalize_after_the_fallback_then_committed() -> None:
    async with turns(vad_driven=False) as (t, commits):
        await t.final("hello there")
        t.assembler.speech_ended()
        await t.clock.advance(FALLBACK_MS / 1000 - 0.01)
        assert t.stream.finalizes == 0 and commits == []
        await t.clock.advance(0.02)
        assert t.stream.finalizes == 1 and commits == []  # its last words get the grace period
        await t.clock.advance(FINALIZE_GRACE_S - 0.02)
        assert commits == []
        await t.clock.advance(0.02)
        assert commits == ["hello there"]


async def interim(t: Turns, text: str) -> None:
    await t.assembler.on_transcript(Transcript(text, is_final=False))


async def test_an_interim_at_the_fallback_waits_for_its_final_and_commits_the_whole_sentence() -> None:
    """A vendor slower than the grace period: the interim is not answered, the late final is (once)."""
    async with turns(vad_driven=False) as (t, commits):
        await interim(t, "I would like the")
        t.assembler.speech_ended()
        await t.clock.advance(FALLBACK_MS / 1000 + FINALIZE_GRACE_S + 0.2)
        assert t.stream.finalizes == 1 and commits == []  # still waiting for the final
        await t.final("I would like the foxtrot plan")
        await t.clock.settle()
        assert commits == ["I would like the foxtrot plan"]
        await t.clock.advance(FINALIZE_WAIT_S)
        assert commits == ["I would like the foxtrot plan"]


async def test_an_interim_whose_final_never_comes_is_committed_after_the_bounded_wait() -> None:
    async with turns(vad_driven=False) as (t, commits):
        await interim(t, "I would like the")
        t.assembler.speech_ended()
        await t.clock.advance(FALLBACK_MS / 1000 + 0.01)
        assert t.stream.finalizes == 1
        await t.clock.advance(FINALIZE_WAIT_S - 0.02)
        assert commits == []
        await t.clock.advance(0.02)
        assert commits == ["I would like the"]


async def test_speech_that_resumes_before_the_fallback_keeps_the_turn_open() -> None:
    async with turns(vad_driven=False) as (t, commits):
        await t.final("I want")
        t.assembler.speech_ended()
        await t.clock.advance(0.5)
        t.assembler.speech_started()  # the caller goes on
        await t.clock.advance(3.0)
        assert commits == [] and t.stream.finalizes == 0
        await t.final("to book a table")
        t.assembler.speech_ended()
        await t.clock.advance((FALLBACK_MS / 1000) + FINALIZE_GRACE_S + 0.01)
        assert commits == ["I want to book a table"]


async def test_silence_with_nothing_heard_commits_nothing() -> None:
    async with turns(vad_driven=False) as (t, commits):
        t.assembler.speech_ended()
        await t.clock.advance(5.0)
        assert commits == [] and t.stream.finalizes == 0


async def test_vad_driven_each_pause_asks_for_a_final_and_resumed_speech_holds_it() -> None:
    async with turns(vad_driven=True) as (t, commits):
        t.hear(voice(400))
        assert t.vad.speaking
        t.pause()  # the caller pauses
        await t.clock.settle()
        assert t.stream.finalizes == 1
        t.hear(voice(400))  # ... and goes on before the recogniser's final is back
        assert t.vad.speaking
        await t.final("I want", end_of_turn=True)
        assert commits == []  # held: it opens the next turn
        t.pause()
        await t.clock.settle()
        assert t.stream.finalizes == 2
        await t.final("a table for two", end_of_turn=True)
        assert commits == ["I want a table for two"]


async def test_vad_driven_a_final_after_the_caller_stopped_commits() -> None:
    async with turns(vad_driven=True) as (t, commits):
        t.hear(voice(400))
        t.pause()
        await t.clock.settle()
        await t.final("yes please", end_of_turn=True)
        assert commits == ["yes please"]


async def test_close_cancels_a_pending_fallback() -> None:
    async with turns(vad_driven=False) as (t, commits):
        await t.final("hello")
        t.assembler.speech_ended()
        await t.assembler.close()
        await t.clock.advance(5.0)
        assert commits == [] and t.clock.sleepers == 0
