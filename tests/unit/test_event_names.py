"""``EventBus.on`` by documented name: every name subscribes, aliases narrow, unknown names refuse."""

from __future__ import annotations

from typing import Any

import pytest

from getpatter import PatterConfigError
from getpatter.call.bus import EventBus
from getpatter.call.event_names import EVENT_CLASSES, PatterEventType, resolve_event_name, valid_names
from getpatter.call.events import CallEnded, UsageRecorded, UserTranscript


def test_every_documented_name_resolves_and_the_canonical_ones_are_the_event_types() -> None:
    assert {t.value for t in PatterEventType} == set(valid_names())
    for name in PatterEventType:
        assert resolve_event_name(name).event_type is not None
    for name, cls in EVENT_CLASSES.items():
        assert resolve_event_name(name).event_type is cls and resolve_event_name(name).accepts is None


@pytest.mark.parametrize("name", [t.value for t in PatterEventType])
def test_every_name_subscribes_on_a_bus(name: str) -> None:
    bus = EventBus()
    event_type = resolve_event_name(name).event_type
    unsubscribe = bus.on(name, lambda ev: None)
    assert len(bus._handlers.get(event_type, [])) == 1  # registered under the event class the name means
    unsubscribe()
    assert bus._handlers.get(event_type, []) == []


def test_a_name_fires_like_its_class_and_aliases_narrow() -> None:
    bus = EventBus()
    seen: dict[str, list[Any]] = {"final": [], "llm": [], "stt": [], "ended": []}
    bus.on("transcript_final", seen["final"].append)
    bus.on(PatterEventType.LLM_METRICS, seen["llm"].append)
    off = bus.on("stt_metrics", seen["stt"].append)
    bus.on("CALL_ENDED", seen["ended"].append)  # names are case-insensitive
    bus.emit(UserTranscript(call_id="c", text="hi"))
    bus.emit(UsageRecorded(call_id="c", kind="llm", provider="openai", model="gpt-4o-mini"))
    bus.emit(UsageRecorded(call_id="c", kind="stt", provider="deepgram", audio_seconds=1.0))
    off()
    bus.emit(UsageRecorded(call_id="c", kind="stt", provider="deepgram", audio_seconds=2.0))
    bus.emit(CallEnded(call_id="c", reason="stopped"))
    assert [e.text for e in seen["final"]] == ["hi"]
    assert [e.kind for e in seen["llm"]] == ["llm"]
    assert [e.audio_seconds for e in seen["stt"]] == [1.0]  # unsubscribed before the second
    assert [e.reason for e in seen["ended"]] == ["stopped"]


def test_an_unknown_name_raises_with_the_valid_names() -> None:
    with pytest.raises(PatterConfigError) as err:
        EventBus().on("transcript_finale", print)
    message = str(err.value)
    assert "transcript_finale" in message
    assert all(name in message for name in ("transcript_final", "call_ended", "call_summary", "turn_ended"))


def test_a_documented_name_that_is_never_emitted_says_what_to_use() -> None:
    with pytest.raises(PatterConfigError, match="transcript_final"):
        EventBus().on("transcript_partial", print)


@pytest.mark.parametrize("bad", [42, object(), str])
def test_anything_else_is_refused(bad: Any) -> None:
    with pytest.raises(PatterConfigError, match="event class"):
        EventBus().on(bad, print)
