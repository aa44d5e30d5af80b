"""Batch recognisers (decode on the VAD's end of speech) must not lose words when the caller resumes
while a decode is still in flight."""

from __future__ import annotations

import pytest

from getpatter.stt.whisper import WhisperSTT
from tests.fakes.openai_transcribe import FakeOpenAITranscribe
from tests.fakes.server import running
from tests.integration.harness import call_harness


# 0.3 s: the first final is back while the caller is still talking; 1.0 s: after the second pause began.
@pytest.mark.parametrize("decode_s", [0.3, 1.0])
async def test_caller_resuming_during_a_slow_decode_is_answered_once_for_the_whole_sentence(
    decode_s: float,
) -> None:
    fake = FakeOpenAITranscribe(utterances=["I'd like to book", "a cleaning on Friday."], delay_s=decode_s)
    async with running(fake.app) as srv:
        stt = WhisperSTT(fake.api_key, base_url=srv.http_url + "/v1")
        async with call_harness(replies=["Friday works."], ms_per_char=5, providers={"stt": stt}) as h:
            call = await h.dial()
            await call.wait_for_agent_audio(timeout=5)
            await call.wait_agent_quiet(quiet_ms=200, timeout=10)

            await call.say_tone(400)
            await call.silence(650)  # the VAD ends the turn after 500 ms: the first decode starts
            await call.say_tone(400)  # the caller goes on before it is back
            await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
            await call.wait_agent_quiet(quiet_ms=200, timeout=10)
            await call.hangup()
            await h.wait_ended()

    assert len(fake.uploads) == 2
    said = " ".join(t["text"] for t in h.ended[0]["transcript"] if t["role"] == "user")
    assert "I'd like to book" in said and "a cleaning on Friday." in said, said
    assert h.llm.user_texts() == ["I'd like to book a cleaning on Friday."]  # one answer, to all of it
