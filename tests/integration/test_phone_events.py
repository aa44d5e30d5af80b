"""``phone.events`` is the process-wide bus: a real call's events reach it, by name and by class."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from getpatter.call.events import CallSummary, UserTranscript
from tests.integration.harness import call_harness

NAMES = (
    "call_started",
    "transcript_final",
    "user_transcript",
    "agent_utterance",
    "turn_started",
    "turn_ended",
    "stt_metrics",
    "llm_metrics",
    "tts_metrics",
    "call_ended",
    "metrics_collected",
    "call_summary",
)


async def test_a_calls_events_reach_phone_events_by_name_and_by_class() -> None:
    seen: dict[str, list[Any]] = defaultdict(list)
    async with call_harness(utterances=["What are your opening hours?"], replies=["Nine to five."]) as h:
        for name in NAMES:
            h.phone.events.on(name, seen[name].append)
        h.phone.events.on(UserTranscript, seen["class"].append)
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    missing = [name for name in NAMES if not seen[name]]
    assert missing == []
    for name in NAMES:
        assert {ev.call_id for ev in seen[name]} == {call.sid}, name
    assert [ev.text for ev in seen["transcript_final"]] == ["What are your opening hours?"]
    assert [ev.text for ev in seen["class"]] == ["What are your opening hours?"]
    assert {ev.kind for ev in seen["llm_metrics"]} == {"llm"}
    (summary,) = seen["metrics_collected"]
    assert isinstance(summary, CallSummary) and summary.metrics is h.ended[0]["metrics"]
