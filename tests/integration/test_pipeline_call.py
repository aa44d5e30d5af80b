"""A real inbound Twilio call in pipeline mode, end to end over real sockets."""

from __future__ import annotations

from tests.integration.harness import call_harness


async def test_two_turn_call_has_exact_transcript_and_history() -> None:
    async with call_harness(
        utterances=["What are your opening hours?", "Thanks, goodbye."],
        replies=["We are open nine to five. Anything else?", "Have a great day."],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)  # the greeting
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)

        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)

        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    assert call.protocol_errors == []  # every message we sent was valid Twilio protocol
    assert len(h.ended) == 1
    end = h.ended[0]
    assert end["call_id"] == call.sid
    assert end["caller"] == "+15550001111" and end["callee"] == "+15550002222"
    assert end["transcript"] == [
        {"role": "assistant", "text": "Hello, thanks for calling."},
        {"role": "user", "text": "What are your opening hours?"},
        {"role": "assistant", "text": "We are open nine to five. Anything else?"},
        {"role": "user", "text": "Thanks, goodbye."},
        {"role": "assistant", "text": "Have a great day."},
    ]
    # The LLM saw the system prompt and the whole conversation so far on the second turn.
    second = h.llm.requests[1]["messages"]
    assert second[0] == {"role": "system", "content": "You are a helpful receptionist."}
    assert [m["content"] for m in second[1:]] == [
        "Hello, thanks for calling.",
        "What are your opening hours?",
        "We are open nine to five. Anything else?",
        "Thanks, goodbye.",
    ]
    # Every sentence was synthesized, and the caller heard all of the agent's audio.
    assert h.tts.texts == [
        "Hello, thanks for calling.",
        "We are open nine to five.",
        "Anything else?",
        "Have a great day.",
    ]
    expected_chars = sum(len(t) for t in h.tts.texts)
    assert len(call.played_audio_mulaw()) >= expected_chars * 20 * 8 * 0.95  # 20 ms/char at 8 bytes/ms
    assert [t["role"] for t in h.transcripts] == ["assistant", "user", "assistant", "user", "assistant"]
    assert h.transcripts[-1]["history"][-1]["text"] == "Have a great day."
