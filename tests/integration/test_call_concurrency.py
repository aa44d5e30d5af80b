"""Many calls at once through one server: no cross-talk, every call answered and ended exactly once."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import pytest

from tests.fakes._patience import patient
from tests.fakes.twilio import FakeCall
from tests.integration.harness import call_harness

CALLS = 20
GREETING = "Hello, thanks for calling."
WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
]  # fmt: skip
UTTERANCES = [f"I would like the {word} plan" for word in WORDS[:CALLS]]
MS_PER_CHAR = 15.0
MULAW_BYTES_PER_MS = 8


def _echo_last_user_message(body: dict[str, Any]) -> str:
    """The LLM answers from the request alone, so a reply proves which conversation it was given."""
    users = [m for m in body["messages"] if m["role"] == "user"]
    return f"You said: {users[-1]['content']}."


async def _one_call(dial: Any, index: int) -> FakeCall:
    await asyncio.sleep(0.02 * index)  # staggered, so calls are in different phases at any moment
    call: FakeCall = await dial()
    await call.wait_for_agent_audio(timeout=10)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    await call.say_tone(300 + 15 * index)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    await call.hangup()
    return call


async def test_twenty_concurrent_calls_each_get_their_own_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # All 20 sockets come from 127.0.0.1 (like behind a tunnel or from one carrier edge): signed sockets
    # are not held to the per-IP cap of 10, which only counts unauthenticated ones.
    monkeypatch.delenv("PATTER_MAX_SOCKETS_PER_IP", raising=False)
    async with call_harness(
        utterances=UTTERANCES, replies=_echo_last_user_message, ms_per_char=MS_PER_CHAR
    ) as h:
        calls = await asyncio.wait_for(
            asyncio.gather(*(_one_call(h.dial, i) for i in range(CALLS))), patient(30)
        )
        await h.wait_ended(count=CALLS, timeout=15)
        await asyncio.sleep(0.5)  # no late second on_call_end for any call

    sids = {c.sid for c in calls}
    assert len(sids) == CALLS
    ends = collections.Counter(e["call_id"] for e in h.ended)
    assert ends == dict.fromkeys(sids, 1)

    heard: list[str] = []
    by_sid = {c.sid: c for c in calls}
    for end in h.ended:
        transcript = end["transcript"]
        assert len(transcript) == 3, transcript
        greeting, user, reply = transcript
        assert greeting == {"role": "assistant", "text": GREETING}
        assert user["role"] == "user" and user["text"] in UTTERANCES
        # The answer is to this call's own words, not another caller's.
        assert reply == {"role": "assistant", "text": f"You said: {user['text']}."}
        heard.append(user["text"])

        call = by_sid[end["call_id"]]
        assert call.protocol_errors == []
        assert call.ended_by == "caller-hangup"
        spoken_chars = len(GREETING) + len(reply["text"])
        expected_bytes = spoken_chars * MS_PER_CHAR * MULAW_BYTES_PER_MS
        assert len(call.played_audio_mulaw()) >= expected_bytes * 0.95

        # on_transcript for this call tells the same story, in order, with its own history only.
        mine = [t for t in h.transcripts if t["call_id"] == call.sid]
        assert [(t["role"], t["text"]) for t in mine] == [(t["role"], t["text"]) for t in transcript]
        assert [(x["role"], x["text"]) for x in mine[-1]["history"]] == [
            (t["role"], t["text"]) for t in transcript
        ]

    # Each scripted utterance was heard by exactly one call.
    assert sorted(heard) == sorted(UTTERANCES)
    # One LLM request per call, each carrying only its own conversation.
    assert len(h.llm.requests) == CALLS
    for request in h.llm.requests:
        assert request["messages"][0]["role"] == "system"
        contents = [m["content"] for m in request["messages"]]
        assert contents[1:] == [GREETING, contents[-1]] and contents[-1] in UTTERANCES
    assert sorted(h.llm.user_texts()) == sorted(UTTERANCES)
    assert len(h.deepgram.connections) == CALLS
