"""``phone.agent(audio_filter=...)`` over a whole call: the filter sits before VAD and STT."""

from __future__ import annotations

import pytest

from getpatter.audio.filters import HighPassFilter
from tests.fakes.twilio import FakeCall
from tests.fakes.twilio_media import tone_pcm16_16k
from tests.integration.harness import Harness, call_harness


async def _greeted(h: Harness) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    return call


@pytest.mark.parametrize("filtered", [True, False])
async def test_a_high_pass_filter_keeps_mains_hum_away_from_stt_but_not_speech(filtered: bool) -> None:
    async with call_harness(
        utterances=["first words", "second words"],
        replies=["Reply one.", "Reply two."],
        agent_kwargs={"audio_filter": HighPassFilter(cutoff_hz=200)} if filtered else {},
    ) as h:
        call = await _greeted(h)
        await call.say(tone_pcm16_16k(900, 40.0, -20.0))  # loud 40 Hz hum: energy, but no voice
        await call.silence(700)
        if not filtered:  # the hum is answered: wait for that answer, so the tone is a turn of its own
            await h.wait_transcript("assistant", "Reply one.", timeout=15)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600, 300.0)  # voice-band "speech"
        await h.wait_transcript("assistant", "Reply one." if filtered else "Reply two.", timeout=15)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    heard = [r["messages"][-1]["content"] for r in h.llm.requests]
    if filtered:
        assert heard == ["first words"]  # the hum never reached STT as sound; the speech did
    else:
        assert heard == ["first words", "second words"]  # unfiltered, STT took the hum for speech
