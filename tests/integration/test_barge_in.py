"""Barge-in over a real call: the caller talks over a long reply."""

from __future__ import annotations

import asyncio

from tests.integration.harness import call_harness

LONG_REPLY = (
    "First we open the account settings page. "
    "Then you scroll down to the billing section. "
    "There you find the list of your past invoices. "
    "Pick the invoice you want and press download. "
    "Finally the file is saved to your computer."
)
THRESHOLD_MS = 300


async def test_barge_in_clears_fast_and_keeps_only_what_was_heard() -> None:
    async with call_harness(
        utterances=["How do I get my invoice?", "Wait, stop."],
        replies=[LONG_REPLY, "Sure, I stopped."],
        ms_per_char=20.0,
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)

        await call.say_tone(500)
        reply_started = await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await asyncio.sleep(1.3)  # about a sentence and a half of the long reply has played
        barge = asyncio.create_task(call.say_tone(800))
        await asyncio.sleep(0)
        await barge
        onset = call.speech_onsets[-1]
        await call.wait_for_agent_audio(after=onset + 0.8, timeout=5)  # the answer to "Wait, stop."
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    assert call.protocol_errors == []
    clears = [t for t in call.clear_times if t > reply_started]
    assert len(clears) == 1, call.clear_times
    clear_at = clears[0]
    # The carrier was told to drop the reply within threshold + 100 ms of the caller's onset.
    assert onset < clear_at <= onset + (THRESHOLD_MS + 100) / 1000.0, clear_at - onset
    # No frame of the old reply arrives after the clear: the next audio is the new answer, which can
    # only start after the caller's 800 ms of speech ended.
    after_clear = [r.time for r in call.received if r.kind == "media" and r.time > clear_at]
    assert after_clear and min(after_clear) > onset + 0.8

    transcript = h.ended[0]["transcript"]
    assert [t["role"] for t in transcript] == ["assistant", "user", "assistant", "user", "assistant"]
    heard = transcript[2]["text"]
    # What the caller heard: the first sentence at least, never the sentences that were never played.
    assert heard.startswith("First we open the account settings page.")
    assert LONG_REPLY.startswith(heard)
    assert "Finally" not in heard and "invoice you want" not in heard
    assert transcript[3] == {"role": "user", "text": "Wait, stop."}
    assert transcript[4] == {"role": "assistant", "text": "Sure, I stopped."}
    # The LLM's context for the next turn holds the heard part only.
    assert h.llm.requests[1]["messages"][3] == {"role": "assistant", "content": heard}


async def test_barge_in_disabled_lets_the_reply_finish() -> None:
    async with call_harness(
        utterances=["How do I get my invoice?", "Okay."],
        replies=[LONG_REPLY, "Great."],
        agent_kwargs={"barge_in_threshold_ms": 0},
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await asyncio.sleep(0.8)
        await call.say_tone(600)
        await h.wait_transcript("assistant", "Great.", timeout=15)  # answered after the long reply...
        await call.wait_agent_quiet(quiet_ms=600, timeout=15)  # ...and heard to the end
        await call.hangup()
        await h.wait_ended()

    assert call.clear_times == []
    transcript = h.ended[0]["transcript"]
    assert transcript[2] == {"role": "assistant", "text": LONG_REPLY}
    assert transcript[3] == {"role": "user", "text": "Okay."}
    assert transcript[4] == {"role": "assistant", "text": "Great."}
