"""How a ``CallSession`` ends, on virtual time: carrier stop, socket close, watchdog, hang-up, transfer,
lost TTS, and ending exactly once. The carrier side speaks the real Twilio media protocol (its codec)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from getpatter.agent import Agent
from getpatter.audio.convert import FormatConverter
from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.call.budgets import MediaLimits
from getpatter.call.events import AgentUtterance, CallEnded, ErrorOccurred, Interrupted
from getpatter.call.session import CallRuntime, CallSession
from getpatter.carriers.base import CarrierControl
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.errors import PatterConnectionError, PatterError
from getpatter.server.media_socket import run_until_ended
from tests.unit._vendors import ScriptedSTT, ScriptedTTS
from tests.unit._virtual_clock import VirtualClock

CALL_SID = "CA" + "0123456789abcdef" * 2
STREAM_SID = "MZ" + "0123456789abcdef" * 2


class Control(CarrierControl):
    """The carrier's REST side of the call, recording what it was asked."""

    def __init__(self, *, refuse_transfer: bool = False) -> None:
        self.calls: list[str] = []
        self.refuse_transfer = refuse_transfer

    async def hangup(self) -> None:
        self.calls.append("hangup")

    async def transfer(self, number: str) -> None:
        if self.refuse_transfer:
            raise PatterConnectionError("carrier refused the transfer")
        self.calls.append(f"transfer {number}")

    async def say_and_hangup(self, text: str) -> None:
        self.calls.append(f"say_and_hangup {text}")


@dataclass
class Call:
    session: CallSession
    clock: VirtualClock
    inbox: asyncio.Queue[str | None]
    tts: ScriptedTTS
    control: Control | None
    ended: list[dict[str, Any]] = field(default_factory=list)
    events: list[CallEnded] = field(default_factory=list)
    errors: list[ErrorOccurred] = field(default_factory=list)
    interruptions: list[Interrupted] = field(default_factory=list)
    utterances: list[AgentUtterance] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    task: asyncio.Future[None] | None = None

    def carrier(self, event: str, **body: Any) -> None:
        self.inbox.put_nowait(json.dumps({"event": event, "streamSid": STREAM_SID, **body}))

    def media(self, ms: int = 20, audio: bytes | None = None) -> None:
        payload = audio if audio is not None else b"\xff" * 8 * ms  # mu-law silence
        self.carrier("media", media={"payload": base64.b64encode(payload).decode()})

    async def caller_speaks(self, ms: int) -> None:
        """The caller talks for ``ms``: 20 ms frames of a -20 dBFS tone, in real (virtual) time."""
        to_wire = FormatConverter(PCM16_16K, MULAW_8K)
        n = np.arange(16 * ms)
        tone = (0.1 * 32767 * np.sin(2 * np.pi * 440 * n / 16000)).astype("<i2").tobytes()
        wire = to_wire.process(tone)
        for i in range(0, len(wire), 160):
            self.media(audio=wire[i : i + 160])
            await self.clock.advance(0.020)

    async def finished(self) -> dict[str, Any]:
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)  # a hang guard: the call runs on virtual time
        (ended,) = self.ended
        return ended


@asynccontextmanager
async def call(
    *,
    control: Control | None = None,
    first_message: str = "",
    media_timeout_s: float = 30.0,
    max_call_s: float = 3600.0,
    tts: ScriptedTTS | None = None,
) -> AsyncIterator[Call]:
    clock = VirtualClock()
    tts = tts or ScriptedTTS()
    agent = Agent(
        system_prompt="Be brief.",
        provider="pipeline",
        stt=ScriptedSTT(),
        tts=tts,
        first_message=first_message,
    )
    ended: list[dict[str, Any]] = []
    runtime = CallRuntime(
        agent=agent,
        carrier="twilio",
        make_control=lambda call_id: control,
        on_call_end=ended.append,
        media_timeout_s=media_timeout_s,
        max_call_s=max_call_s,
        media_limits=MediaLimits(),
    )
    sent: list[dict[str, Any]] = []

    async def send(message: str) -> None:
        sent.append(json.loads(message))

    session = CallSession(runtime, TwilioMediaCodec(), send, clock=clock)
    inbox: asyncio.Queue[str | None] = asyncio.Queue()
    c = Call(session, clock, inbox, tts, control, ended, sent=sent)
    session.bus.on(CallEnded, c.events.append)
    session.bus.on(ErrorOccurred, c.errors.append)
    session.bus.on(Interrupted, c.interruptions.append)
    session.bus.on(AgentUtterance, c.utterances.append)
    c.task = asyncio.ensure_future(run_until_ended(session, inbox.get))
    c.carrier("start", start={"streamSid": STREAM_SID, "callSid": CALL_SID, "customParameters": {}})
    await clock.settle()
    assert session.ctx is not None and session.ctx.call_id == CALL_SID
    try:
        yield c
    finally:
        if not c.task.done():
            c.inbox.put_nowait(None)
            await asyncio.wait_for(c.task, 5)


async def test_the_carriers_stop_ends_the_call_once_with_its_reason() -> None:
    async with call() as c:
        c.media()
        c.carrier("stop")
        ended = await c.finished()
        assert ended["reason"] == "stopped" and ended["call_id"] == CALL_SID
        assert [e.reason for e in c.events] == ["stopped"] and c.events[0].error_code is None
        assert c.session.end_reason == "stopped" and c.session.ended.is_set()


async def test_a_closed_socket_ends_the_call() -> None:
    async with call() as c:
        c.inbox.put_nowait(None)
        assert (await c.finished())["reason"] == "socket_closed"


async def test_a_silent_socket_is_ended_by_the_watchdog_after_the_media_timeout() -> None:
    async with call(media_timeout_s=30.0) as c:
        for _ in range(5):  # media every 10 s keeps it alive, whatever else happens
            await c.clock.advance(10.0)
            c.media()
        assert not c.session.stop_requested.is_set()
        await c.clock.advance(25.0)
        assert not c.session.stop_requested.is_set()
        await c.clock.advance(10.0)  # 30 s without media (the watchdog looks every 5 s)
        ended = await c.finished()
        assert ended["reason"] == "no_media"


async def test_no_call_outlives_its_maximum_duration() -> None:
    async with call(max_call_s=60.0) as c:
        for _ in range(11):  # 55 s of a live call
            c.media()
            await c.clock.advance(5.0)
        assert not c.session.stop_requested.is_set()
        c.media()
        await c.clock.advance(5.0)
        ended = await c.finished()
        assert ended["reason"] == "max_duration"


async def test_an_agent_hang_up_goes_through_the_carrier_and_is_the_reason() -> None:
    control = Control()
    async with call(control=control) as c:
        await c.session.request_hangup()
        assert control.calls == ["hangup"]
        await c.session.request_hangup()
        assert control.calls == ["hangup"]  # the carrier was told once
        c.carrier("stop")  # the carrier ends the stream as a result
        assert (await c.finished())["reason"] == "agent_hangup"


async def test_an_agent_hang_up_without_carrier_rest_closes_the_socket() -> None:
    async with call(control=None) as c:
        await c.session.request_hangup()
        assert (await c.finished())["reason"] == "agent_hangup"


async def test_a_refused_transfer_leaves_the_call_going_and_the_end_reason_untouched() -> None:
    async with call(control=Control(refuse_transfer=True)) as c:
        with pytest.raises(PatterError):
            await c.session.transfer("+15551234567")
        assert [e.error_code for e in c.errors] == ["transfer"]
        c.carrier("stop")
        assert (await c.finished())["reason"] == "stopped"


async def test_an_accepted_transfer_is_the_reason_when_the_carrier_stops_the_stream() -> None:
    control = Control()
    async with call(control=control) as c:
        await c.session.transfer("+15551234567")
        c.carrier("stop")
        assert (await c.finished())["reason"] == "transferred"
        assert control.calls == ["transfer +15551234567"]


async def test_a_tts_that_stays_down_apologises_through_the_carrier_and_ends_as_an_error() -> None:
    tts = ScriptedTTS()
    tts.failures = [PatterConnectionError("TTS down"), PatterConnectionError("TTS still down")]
    control = Control()
    async with call(control=control, first_message="Hello!", tts=tts) as c:
        await c.clock.advance(1.0)
        assert tts.requests == ["Hello!", "Hello!"]
        (apology,) = control.calls
        assert apology.startswith("say_and_hangup Sorry")
        c.carrier("stop")  # the carrier hangs up after the apology
        ended = await c.finished()
        assert ended["reason"] == "error" and c.events[0].error_code == "tts"


async def test_ending_twice_runs_on_call_end_once() -> None:
    async with call() as c:
        shutdown = asyncio.ensure_future(c.session.end("server_shutdown"))
        await c.clock.settle()  # the shutdown is ending the call ...
        await c.session.end("stopped")  # ... so a later end waits for that one, and changes nothing
        assert shutdown.done()
        c.carrier("stop")
        ended = await c.finished()
        assert ended["reason"] == "server_shutdown" and len(c.events) == 1


GREETING = "Hello and welcome to the clinic, I can book, move or cancel an appointment for you."


async def test_caller_speech_over_the_agent_interrupts_it_after_the_threshold() -> None:
    async with call(first_message=GREETING) as c:
        await c.clock.advance(0.5)  # half a second of the greeting has gone out
        assert c.session.conversation is not None and c.session.conversation.agent_busy
        await c.caller_speaks(200)
        assert c.interruptions == [] and c.session.conversation.agent_busy
        await c.caller_speaks(300)  # now past the 300 ms threshold
        (cut,) = c.interruptions
        assert not c.session.conversation.agent_busy
        assert c.sent[-1]["event"] == "clear"
        (said,) = c.utterances
        assert said.interrupted and said.full_text == GREETING
        assert cut.heard_text == said.text and GREETING.startswith(said.text)
        assert 0 < len(said.text.split()) < len(GREETING.split())  # part of it was heard


async def test_a_cough_does_not_interrupt_the_agent() -> None:
    async with call(first_message=GREETING) as c:
        await c.clock.advance(0.5)
        await c.caller_speaks(150)
        for _ in range(25):  # then quiet
            c.media()
            await c.clock.advance(0.020)
        assert c.interruptions == [] and c.session.conversation is not None
        assert c.session.conversation.agent_busy
