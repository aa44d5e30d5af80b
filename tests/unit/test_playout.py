"""``Playout`` on virtual time: pacing just ahead of the carrier, marks, and clearing on barge-in."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from getpatter.call.playout import Playout
from getpatter.carriers.twilio.media import TwilioMediaCodec
from tests.unit._virtual_clock import VirtualClock

MS = 8  # bytes per millisecond of mu-law 8 kHz (the Twilio wire format)


class CarrierSocket:
    """What the playout sent, decoded."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.messages.append(json.loads(text))

    def events(self) -> Iterator[str]:
        return (m["event"] for m in self.messages)

    @property
    def audio_ms(self) -> float:
        return sum(len(base64.b64decode(m["media"]["payload"])) for m in self.media()) / MS

    def media(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["event"] == "media"]

    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.messages if m["event"] == "mark"]


@asynccontextmanager
async def playing() -> Any:
    clock = VirtualClock()
    socket = CarrierSocket()
    playout = Playout(TwilioMediaCodec("MZ1"), socket.send, lead_ms=80.0, chunk_ms=60, clock=clock)
    playout.start()
    try:
        yield playout, socket, clock
    finally:
        await playout.close()


def say(playout: Playout, text: str, ms: int) -> None:
    playout.begin_segment(text)
    playout.push(b"\xff" * (ms * MS))
    playout.end_segment()


async def test_audio_is_sent_just_ahead_of_playback_never_further() -> None:
    async with playing() as (playout, socket, clock):
        start = clock.now()
        say(playout, "A long sentence.", 1000)
        await clock.settle()
        assert socket.audio_ms == 120.0  # two 60 ms chunks: the lead (80 ms) is covered at once
        while socket.audio_ms < 1000:
            await clock.advance(0.010)
            elapsed_ms = (clock.now() - start) * 1000
            ahead = socket.audio_ms - elapsed_ms
            if socket.audio_ms < 1000:
                assert 80.0 < ahead <= 140.0 + 1e-6, (elapsed_ms, socket.audio_ms)
        assert 860 <= (clock.now() - start) * 1000 <= 930  # paced, not dumped: ~1 s minus the lead
        assert playout.first_audio_sent == start
        # The segment's mark follows its last audio, once.
        await clock.advance(0.5)
        assert list(socket.events())[-1] == "mark" and len(socket.marks()) == 1


async def test_each_sentence_ends_with_a_mark_and_echoes_tell_what_was_heard() -> None:
    async with playing() as (playout, socket, clock):
        say(playout, "Hello there.", 200)
        say(playout, "How are you?", 200)
        await clock.advance(0.5)
        first, second = socket.marks()
        # Audio of the first sentence, its mark, audio of the second, its mark: in that order.
        events = list(socket.events())
        assert events.index("mark") < len(events) - 1 and events[-1] == "mark"
        assert socket.audio_ms == 400.0
        assert playout.speaking and playout.heard_text() == ""

        playout.on_mark(first)
        assert playout.heard_text() == "Hello there." and playout.speaking
        playout.on_mark("seg-unknown")  # a stray echo changes nothing
        assert playout.speaking
        playout.on_mark(second)
        assert not playout.speaking and await playout.wait_idle(timeout=0)
        assert playout.finish_utterance() == ("Hello there. How are you?", "Hello there. How are you?")


async def test_interrupt_clears_the_carrier_and_keeps_only_what_was_heard() -> None:
    async with playing() as (playout, socket, clock):
        say(playout, "one two three four", 400)
        say(playout, "five six", 200)
        await clock.advance(0.200)
        report = await playout.interrupt()
        assert report.text == "one two"  # 200 of its 400 ms played: half its words
        assert report.heard_ms == pytest.approx(200.0)
        assert report.full_text == "one two three four five six"
        assert report.stopped_at == clock.now()
        assert list(socket.events())[-1] == "clear"
        sent = socket.audio_ms
        await clock.advance(1.0)
        assert socket.audio_ms == sent  # nothing more of the cut utterance goes out
        assert not playout.speaking


async def test_echoes_of_cleared_marks_do_not_count_for_the_next_utterance() -> None:
    async with playing() as (playout, socket, clock):
        say(playout, "First answer.", 200)
        await clock.advance(0.150)  # its mark is on its way to the carrier, not echoed yet
        (cleared,) = socket.marks()
        await playout.interrupt()

        say(playout, "Second answer.", 200)
        await clock.advance(0.5)
        assert len(socket.marks()) == 2
        playout.on_mark(cleared)  # the carrier echoes the cleared mark too: written off
        assert playout.speaking and playout.heard_text() == ""
        playout.on_mark(socket.marks()[-1])
        assert not playout.speaking and playout.heard_text() == "Second answer."


async def test_heard_time_runs_on_between_echoes_but_never_past_what_was_sent() -> None:
    async with playing() as (playout, _socket, clock):
        say(playout, "Hello.", 300)
        await clock.settle()
        assert playout.heard_ms() == 0.0
        await clock.advance(0.100)
        assert playout.heard_ms() == pytest.approx(100.0)
        playout.begin_segment("More.")  # queued but the carrier has not got it all yet
        await clock.advance(5.0)
        assert playout.heard_ms() == pytest.approx(300.0)
