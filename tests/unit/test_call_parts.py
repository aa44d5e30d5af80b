"""Small call-layer values: barge-in decisions, the turn clock, how a call ends, background tasks."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pytest

from getpatter._tasks import BackgroundTasks
from getpatter.audio.vad import VoiceActivity
from getpatter.call.barge_in import BARGE_IN_GAP_MS, barge_in_onset
from getpatter.call.ending import CallEnd
from getpatter.call.events import TurnTimings
from getpatter.call.turn_clock import Turn, first

# -- barge-in -----------------------------------------------------------------------------------------


@dataclass
class Voice:
    """A VAD's state at one instant (milliseconds of caller audio)."""

    speaking: bool = True
    stream_ms: float = 0.0
    last_voiced_ms: float = 0.0
    onset_ms: float = 0.0


def decide(voice: Voice, *, busy_since: float = 0.0, done: float | None = None) -> float | None:
    return barge_in_onset(voice, threshold_ms=300, busy_since_ms=busy_since, interrupted_onset=done)


def test_speech_interrupts_once_it_has_lasted_the_threshold() -> None:
    assert decide(Voice(onset_ms=1000, last_voiced_ms=1299, stream_ms=1300)) is None
    assert decide(Voice(onset_ms=1000, last_voiced_ms=1300, stream_ms=1300)) == 1000


def test_speech_from_before_the_answer_counts_from_the_answers_start() -> None:
    # The caller's turn tail (onset 1000) runs on into the answer that started at 1500.
    voice = Voice(onset_ms=1000, last_voiced_ms=1700, stream_ms=1700)
    assert decide(voice, busy_since=1500) is None
    voice.last_voiced_ms = voice.stream_ms = 1800
    assert decide(voice, busy_since=1500) == 1500


def test_a_caller_in_the_vads_hangover_has_stopped() -> None:
    voice = Voice(onset_ms=1000, last_voiced_ms=1400, stream_ms=1400 + BARGE_IN_GAP_MS + 1)
    assert decide(voice) is None
    voice.stream_ms = 1400 + BARGE_IN_GAP_MS
    assert decide(voice) == 1000


def test_one_stretch_of_speech_interrupts_once_and_silence_or_a_zero_threshold_never() -> None:
    voice = Voice(onset_ms=1000, last_voiced_ms=2000, stream_ms=2000)
    assert decide(voice, done=1000) is None
    assert decide(voice, done=500) == 1000
    assert decide(dataclasses.replace(voice, speaking=False)) is None
    assert barge_in_onset(voice, threshold_ms=0, busy_since_ms=0, interrupted_onset=None) is None


def test_the_decision_reads_a_real_voice_activity_detector() -> None:
    vad = VoiceActivity()
    n = np.arange(16 * 500)
    tone = (0.1 * 32767 * np.sin(2 * np.pi * 440 * n / 16000)).astype("<i2").tobytes()
    vad.feed(bytes(32 * 200))  # 200 ms of silence, then the caller talks
    vad.feed(tone[: 32 * 200])
    assert (
        vad.speaking
        and barge_in_onset(vad, threshold_ms=300, busy_since_ms=0, interrupted_onset=None) is None
    )
    vad.feed(tone[32 * 200 :])
    onset = barge_in_onset(vad, threshold_ms=300, busy_since_ms=0, interrupted_onset=None)
    assert onset is not None and 150 <= onset <= 260


# -- the turn clock -----------------------------------------------------------------------------------


def test_a_misspelt_stage_is_an_error_not_a_lost_timing() -> None:
    turn = Turn("hello")
    turn.timings = dataclasses.replace(turn.timings, llm_first_token=1.4)
    assert turn.timings == TurnTimings(llm_first_token=1.4)
    with pytest.raises(TypeError):
        dataclasses.replace(turn.timings, llm_first_tokn=1.0)  # type: ignore[call-arg]


def test_first_keeps_the_earliest_stamp() -> None:
    assert first(None, 2.0) == 2.0
    assert first(2.0, 3.0) == 2.0
    assert first(None, None) is None


# -- how a call ends ----------------------------------------------------------------------------------


def test_the_carrier_stopping_is_the_reason_unless_we_asked_for_the_end() -> None:
    assert CallEnd().carrier_stopped("stopped").reason == "stopped"
    asked = CallEnd().requested("agent_hangup")
    assert asked.carrier_stopped("socket_closed").reason == "agent_hangup"
    assert asked.because("media_flood").reason == "media_flood"  # our own cause still wins


def test_a_cause_on_our_side_is_not_replaced_by_the_socket_closing_because_of_it() -> None:
    for reason in ("no_media", "max_duration", "media_flood", "protocol_error"):
        ended = CallEnd().because(reason)
        assert ended.carrier_stopped("socket_closed").reason == reason
        assert ended.carrier_stopped("stopped").reason == reason


def test_a_failure_keeps_its_code_and_the_carrier_is_told_once() -> None:
    end = CallEnd().failed("tts").requested("error")
    assert (end.reason, end.error_code, end.hangup_requested, end.carrier_ending) == (
        "error",
        "tts",
        True,
        False,
    )
    assert end.carrier_told().carrier_ending
    with pytest.raises(dataclasses.FrozenInstanceError):
        end.reason = "stopped"  # type: ignore[misc]


# -- background tasks ---------------------------------------------------------------------------------


async def test_background_tasks_are_held_until_done_and_failures_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = BackgroundTasks(logging.getLogger("test.tasks"))
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    async def broken() -> None:
        raise RuntimeError("boom")

    ok = tasks.spawn(work(), "the work")
    tasks.spawn(broken(), "the broken one")
    for _ in range(3):  # the failing task runs, then its done-callback
        await asyncio.sleep(0)
    assert len(tasks) == 1 and ok.get_name() == "the work"
    assert "the broken one failed: boom" in caplog.text
    gate.set()
    await tasks.wait(timeout=1.0)
    assert len(tasks) == 0 and ok.result() == "done"


async def test_background_tasks_can_be_cancelled_all_at_once() -> None:
    tasks = BackgroundTasks()
    started = [tasks.spawn(asyncio.sleep(3600), f"sleeper {i}") for i in range(3)]
    await tasks.cancel()
    assert all(t.cancelled() for t in started) and len(tasks) == 0
