"""Provider faults in whole calls: the call recovers, or ends cleanly with on_call_end fired once."""

from __future__ import annotations

import asyncio

from tests.fakes.openai_chat import Reply
from tests.integration.harness import call_harness


async def test_stt_drop_mid_utterance_reconnects_and_replays_so_no_words_are_lost() -> None:
    async with call_harness(
        # The fake's script is shared across connections: whichever connection hears the interrupted
        # utterance first takes a copy of it, so the replayed audio maps to the same words.
        utterances=["I need to change my booking", "I need to change my booking", "Thanks"],
        replies=["Sure, which day works for you?", "Bye."],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        first = h.deepgram.connections[0]

        async def disarm_after_first_drop() -> None:
            while first.close_code is None:
                await asyncio.sleep(0.005)
            h.deepgram.drop_after_seconds = None

        speaking = asyncio.create_task(call.say_tone(900))
        await asyncio.sleep(0.25)  # mid-utterance: the vendor has heard the start of it
        h.deepgram.drop_after_seconds = 0.5  # armed: this connection has already heard more than that
        watcher = asyncio.create_task(disarm_after_first_drop())
        await speaking
        await asyncio.wait_for(watcher, 5)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    assert len(h.deepgram.connections) == 2  # dropped once, reconnected once
    assert first.close_code == 1011
    # The second connection got the replayed audio of the interrupted utterance, so it was transcribed.
    assert h.ended[0]["transcript"][1] == {"role": "user", "text": "I need to change my booking"}
    assert h.ended[0]["transcript"][2] == {"role": "assistant", "text": "Sure, which day works for you?"}


async def test_llm_failure_speaks_an_apology_and_the_call_goes_on() -> None:
    async with call_harness(
        utterances=["What time is it?", "Hello?"],
        replies=[Reply(status=500), "I'm back. How can I help?"],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        for _ in range(2):
            await call.say_tone(500)
            await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    transcript = h.ended[0]["transcript"]
    assert transcript[2] == {
        "role": "assistant",
        "text": "Sorry, I'm having trouble right now. Could you say that again?",
    }
    assert transcript[4] == {"role": "assistant", "text": "I'm back. How can I help?"}


async def test_tts_down_retries_then_the_carrier_apologises_and_the_call_ends_once() -> None:
    async with call_harness(utterances=["Hello?"], replies=["You will never hear this."]) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        before = len(h.tts.requests)
        h.tts.status = 500
        await call.say_tone(500)
        await call.wait_closed(timeout=15)
        await h.wait_ended()
        await asyncio.sleep(0.3)

    assert len(h.tts.requests) - before == 2  # tried, retried once
    updates = [r for r in h.twilio.requests if r.path.endswith(f"/Calls/{call.sid}.json")]
    assert len(updates) == 1 and "<Say>" in str(updates[0].form["Twiml"])  # one apology, no extra hang-up
    assert len(h.ended) == 1 and h.ended[0]["reason"] == "error"


async def test_llm_429_waits_for_retry_after_then_answers() -> None:
    async with call_harness(
        utterances=["Are you there?"],
        replies=[Reply(status=429, retry_after=0.2), "Yes, I'm here."],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Yes, I'm here."}
    assert len(h.llm.requests) == 2  # refused once with 429, retried once after Retry-After
