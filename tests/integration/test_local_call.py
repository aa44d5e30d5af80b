"""A whole call with the offline stack: Pico speaks for the caller, Whisper tiny.en really listens."""

from __future__ import annotations

import pytest

from tests.integration.harness import call_harness

pytest.importorskip("faster_whisper", reason="needs the 'local' extra")
pytest.importorskip("py_nanotts", reason="needs the 'local' extra")


async def _speech(text: str) -> bytes:
    from getpatter.local import LocalTTS

    chunks = [c async for c in LocalTTS(gain_db=0).synthesize(text)]
    return b"".join(chunks)


async def test_offline_call_transcribes_the_caller_and_answers_by_script() -> None:
    from getpatter.local import LocalSTT, LocalTTS, ScriptedLLM, SileroVAD

    stt = LocalSTT()
    await stt.warmup()
    async with call_harness(
        first_message="Thanks for calling Acme Dental.",
        providers={"stt": stt, "llm": ScriptedLLM.demo(), "tts": LocalTTS()},
        agent_kwargs={"vad": SileroVAD()},
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=10)
        await call.wait_agent_quiet(quiet_ms=400, timeout=15)

        await call.say(await _speech("What are your opening hours?"))
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=15)
        await call.wait_agent_quiet(quiet_ms=400, timeout=15)

        await call.say(await _speech("Thank you, goodbye."))
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=15)
        await call.wait_agent_quiet(quiet_ms=400, timeout=15)
        await call.hangup()
        await h.wait_ended(timeout=15)

    transcript = h.ended[0]["transcript"]
    assert [t["role"] for t in transcript] == ["assistant", "user", "assistant", "user", "assistant"]
    assert "opening hours" in transcript[1]["text"].lower()  # Whisper heard the caller over 8 kHz mu-law
    assert transcript[2]["text"] == "We're open Monday to Friday, nine to five."
    assert "bye" in transcript[3]["text"].lower()
    assert transcript[4]["text"] == "Thanks for calling Acme Dental. Goodbye!"
    assert call.protocol_errors == []


def test_one_local_stt_serves_streams_on_successive_event_loops() -> None:
    """Apps that build providers once and run several loops (tests, worker restarts) must not trip over a
    lock bound to the first loop; two streams decoding at once share the decoder in turn."""
    import asyncio

    from getpatter.local import LocalSTT

    stt = LocalSTT()

    async def two_callers() -> list[str]:
        speech = await _speech("What are your opening hours?")

        async def one() -> str:
            stream = await stt.open()
            await stream.send(speech)
            await stream.finalize()
            text = ""
            async for event in stream:
                text = event.text
                break
            await stream.close()
            return text

        return list(await asyncio.gather(one(), one()))

    for _ in range(2):
        assert all("opening hours" in text.lower() for text in asyncio.run(two_callers()))


def test_the_short_window_hears_what_the_full_window_hears_and_long_turns_still_decode() -> None:
    import asyncio

    from getpatter.local import LocalSTT

    line = asyncio.run(_speech("Can I book an appointment for Thursday afternoon?"))
    fast, full = LocalSTT().transcribe(line).lower(), LocalSTT(window_s=None).transcribe(line).lower()
    for text in (fast, full):
        assert "book an appointment" in text and "thursday" in text
    # A turn longer than an 8 s window is decoded over the full one.
    pause = bytes(16000 * 2)
    rest = [
        asyncio.run(_speech(t)) for t in ("And my name is Sarah Johnson.", "Please call me back tonight.")
    ]
    long_turn = line + pause + rest[0] + pause + rest[1] + pause
    assert len(long_turn) > 16000 * 2 * 8
    text = LocalSTT(window_s=8).transcribe(long_turn).lower()
    assert "appointment" in text and "sarah johnson" in text and "call me back" in text
