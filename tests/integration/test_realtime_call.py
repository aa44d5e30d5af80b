"""Speech-to-speech calls over Twilio with the OpenAI Realtime engine (fake engine, real everything else)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from getpatter import Patter
from getpatter.carriers.twilio.config import Twilio
from getpatter.engines.openai_realtime import OpenAIRealtime
from tests.fakes.openai_realtime import FakeOpenAIRealtime, Reply
from tests.fakes.server import running
from tests.fakes.twilio import FakeCall, FakeTwilio

HOST = "agent.example.test"
NUMBER = "+15550002222"


@dataclass
class RealtimeHarness:
    twilio: FakeTwilio
    engine: FakeOpenAIRealtime
    server_url: str
    ended: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    async def dial(self) -> FakeCall:
        return await self.twilio.start_inbound_call(self.server_url, HOST)

    async def wait_ended(self, timeout: float = 10.0) -> None:
        async def until() -> None:
            while not self.ended:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until(), timeout)


@contextlib.asynccontextmanager
async def realtime_harness(
    script: list[Reply | str],
    utterances: list[str],
    *,
    system_prompt: str = "You are a helpful receptionist.",
    agent_kwargs: dict[str, Any] | None = None,
    patter_kwargs: dict[str, Any] | None = None,
    serve_kwargs: dict[str, Any] | None = None,
    observers: tuple[Any, ...] = (),
    **fake_kwargs: Any,
) -> AsyncIterator[RealtimeHarness]:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    fake = FakeOpenAIRealtime(script=script, utterances=utterances, **fake_kwargs)
    async with running(twilio.app) as tw, running(fake.app) as rt:
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=tw.http_url),
            phone_number=NUMBER,
            webhook_url=HOST,
            **(patter_kwargs or {}),
        )
        agent = phone.agent(
            system_prompt,
            engine=OpenAIRealtime(api_key=fake.api_key, base_url=rt.http_url + "/v1"),
            first_message="Hello, thanks for calling.",
            **(agent_kwargs or {}),
        )
        ended: list[dict[str, Any]] = []
        metrics: list[dict[str, Any]] = []
        app = phone.asgi_app(
            agent, on_call_end=ended.append, on_metrics=metrics.append, **(serve_kwargs or {})
        )
        app.state.patter.runtime.observers.extend(observers)
        async with running(app) as srv:
            h = RealtimeHarness(twilio, fake, srv.http_url, ended, metrics)
            try:
                yield h
            finally:
                for call in list(twilio.calls.values()):
                    with contextlib.suppress(Exception):
                        await call.aclose()
                await twilio.aclose()


async def test_realtime_two_turns_with_mulaw_passed_through_untouched() -> None:
    async with realtime_harness(
        ["Hello, thanks for calling.", "We open at nine.", "Goodbye now."],
        ["When do you open?", "Thanks, bye."],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    conn = h.engine.connections[0]
    update = next(e for e in conn.events if e["type"] == "session.update")
    assert update["session"]["instructions"] == "You are a helpful receptionist."
    assert update["session"]["audio"]["input"]["format"]["type"] == "audio/pcmu"
    assert update["session"]["audio"]["output"]["format"]["type"] == "audio/pcmu"
    # Every byte the engine produced reached the caller unchanged (no decode/encode in between).
    sent = b"".join(
        __import__("base64").b64decode(e["delta"])
        for e in conn.sent
        if e["type"] == "response.output_audio.delta"
    )
    assert call.agent_audio_mulaw() == sent
    assert call.protocol_errors == []
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": "Hello, thanks for calling."},
        {"role": "user", "text": "When do you open?"},
        {"role": "assistant", "text": "We open at nine."},
        {"role": "user", "text": "Thanks, bye."},
        {"role": "assistant", "text": "Goodbye now."},
    ]
    # Every answer has a measured response time: caller stopped -> first agent audio sent to the carrier.
    answers = [m["turn"].latency for m in h.metrics if m["turn"].user_text]
    assert len(answers) == 2
    for latency in answers:
        assert 0 < latency.total_ms < 2000, latency


async def test_engine_drop_plays_an_apology_through_twilio_and_ends_the_call() -> None:
    async with realtime_harness(["Hello, thanks for calling."], ["Hi"], drop_after_events=12) as h:
        call = await h.dial()
        await call.wait_closed(timeout=10)
        await h.wait_ended()

    updates = [
        r for r in h.twilio.requests if r.method == "POST" and r.path.endswith(f"/Calls/{call.sid}.json")
    ]
    assert updates, "the server should have replaced the call's TwiML"
    twiml = updates[-1].form["Twiml"]
    assert "<Say>" in str(twiml) and "<Hangup" in str(twiml)
    assert h.ended[0]["reason"] == "error"


async def test_realtime_tool_call_round_trip() -> None:
    from getpatter.tools import tool

    @tool
    def lookup_order(order_id: str) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: The order number.
        """
        return {"order_id": order_id, "status": "shipped"}

    async with realtime_harness(
        [
            "Hello, thanks for calling.",
            Reply(tool="lookup_order", arguments={"order_id": "42"}),
            "Your order has shipped.",
        ],
        ["Where is order 42?"],
        agent_kwargs={"tools": [lookup_order]},
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=400, timeout=10)
        await call.hangup()
        await h.wait_ended()
    fake, ended = h.engine, h.ended

    events = fake.connections[0].events
    update = next(e for e in events if e["type"] == "session.update")
    assert [t["name"] for t in update["session"]["tools"]] == ["lookup_order", "transfer_call", "end_call"]
    outputs = [
        e["item"]
        for e in events
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    ]
    assert len(outputs) == 1
    import json

    assert json.loads(outputs[0]["output"]) == {"order_id": "42", "status": "shipped"}
    assert ended[0]["transcript"][-1] == {"role": "assistant", "text": "Your order has shipped."}


async def test_realtime_barge_in_truncates_the_item_to_what_the_caller_heard() -> None:
    long_reply = (
        "Let me walk you through all of our opening hours and every holiday exception in detail. " * 3
    )
    async with realtime_harness(
        ["Hello, thanks for calling.", long_reply, "Sure, stopping."],
        ["Tell me your hours", "Stop please"],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        greeting_bytes = len(call.played_audio_mulaw())
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await asyncio.sleep(1.5)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1] + 0.5, timeout=10)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        heard_of_reply_ms = (len(call.played_audio_mulaw()) - greeting_bytes) / 8.0
        await call.hangup()
        await h.wait_ended()

    truncates = [e for e in h.engine.connections[0].events if e["type"] == "conversation.item.truncate"]
    assert len(truncates) == 1
    sure_ms = len("Sure, stopping.") * 20  # the fake engine's ms_per_char for the third reply
    heard_long_ms = heard_of_reply_ms - sure_ms
    assert abs(truncates[0]["audio_end_ms"] - heard_long_ms) <= 100, (truncates[0], heard_long_ms)
    transcript = h.ended[0]["transcript"]
    assert transcript[2]["role"] == "assistant"
    assert long_reply.startswith(transcript[2]["text"]) and transcript[2]["text"] != long_reply.strip()
    assert transcript[-1] == {"role": "assistant", "text": "Sure, stopping."}


@contextlib.asynccontextmanager
async def convai_harness(
    *, agent_kwargs: dict[str, Any] | None = None, **fake_kwargs: Any
) -> AsyncIterator[tuple[FakeTwilio, Any, str, list[dict[str, Any]]]]:
    from getpatter.engines.elevenlabs_convai import ElevenLabsConvAI
    from tests.fakes.elevenlabs_convai import FakeElevenLabsConvAI

    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    fake = FakeElevenLabsConvAI(**fake_kwargs)
    ended: list[dict[str, Any]] = []
    async with running(twilio.app) as tw, running(fake.app) as el:
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=tw.http_url),
            phone_number=NUMBER,
            webhook_url=HOST,
        )
        agent = phone.agent(
            "You are Acme's assistant.",
            engine=ElevenLabsConvAI(api_key=fake.api_key, agent_id=fake.agent_id, base_url=el.ws_url),
            first_message=fake_kwargs.get("first_message", "Hello, this is the test agent."),
            **(agent_kwargs or {}),
        )
        async with running(phone.asgi_app(agent, on_call_end=ended.append)) as srv:
            try:
                yield twilio, fake, srv.http_url, ended
            finally:
                for call in list(twilio.calls.values()):
                    with contextlib.suppress(Exception):
                        await call.aclose()
                await twilio.aclose()


async def test_elevenlabs_convai_call_with_a_client_tool() -> None:
    from getpatter.tools import tool
    from tests.fakes.elevenlabs_convai import Turn

    @tool
    def check_slot(day: str) -> str:
        """Check a free slot.

        Args:
            day: Day of the week.
        """
        return f"{day} at 10 is free"

    async with convai_harness(
        agent_kwargs={"tools": [check_slot]},
        first_message="Hello, this is Acme.",
        script=[
            Turn(
                user="Is Monday free?",
                tool="check_slot",
                tool_args={"day": "Monday"},
                reply="Monday at ten works.",
            )
        ],
    ) as (twilio, fake, url, ended):
        call = await twilio.start_inbound_call(url, HOST)
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10, after_mark=False)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=400, timeout=10, after_mark=False)
        await call.hangup()
        await _until_ended(ended)

    assert call.protocol_errors == []
    conv = fake.conversations[0] if hasattr(fake, "conversations") else None
    assert ended[0]["transcript"] == [
        {"role": "assistant", "text": "Hello, this is Acme."},
        {"role": "user", "text": "Is Monday free?"},
        {"role": "assistant", "text": "Monday at ten works."},
    ], conv


async def _until_ended(ended: list[dict[str, Any]]) -> None:
    for _ in range(500):
        if ended:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("on_call_end never fired")


async def test_convai_barge_in_clears_the_carrier_and_keeps_the_heard_part() -> None:
    from tests.fakes.elevenlabs_convai import Turn

    long_reply = (
        "Our clinic offers cleanings, fillings, crowns, whitening and emergency visits every weekday."
    )
    async with convai_harness(
        first_message="Hello, this is Acme.",
        script=[Turn(user="What do you offer?", reply=long_reply), Turn(user="Stop", reply="Okay.")],
    ) as (twilio, _fake, url, ended):
        call = await twilio.start_inbound_call(url, HOST)
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10, after_mark=False)
        await call.say_tone(600)
        started = await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await asyncio.sleep(0.8)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1] + 0.6, timeout=10)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10, after_mark=False)
        await call.hangup()
        await _until_ended(ended)

    assert [t for t in call.clear_times if t > started], "the carrier buffer was not cleared"
    transcript = ended[0]["transcript"]
    heard = next(
        t["text"] for t in transcript if t["role"] == "assistant" and long_reply.startswith(t["text"])
    )
    assert heard and heard != long_reply
    assert transcript[-1] == {"role": "assistant", "text": "Okay."}


async def test_convai_drop_plays_an_apology_through_twilio() -> None:
    async with convai_harness(drop_after_events=3) as (twilio, _fake, url, ended):
        call = await twilio.start_inbound_call(url, HOST)
        await call.wait_closed(timeout=10)
        await _until_ended(ended)

    updates = [r for r in twilio.requests if r.path.endswith(f"/Calls/{call.sid}.json")]
    assert len(updates) == 1 and "<Say>" in str(updates[0].form["Twiml"])
    assert ended[0]["reason"] == "error"


async def test_realtime_guardrail_cuts_the_response_and_speaks_the_replacement() -> None:
    from getpatter.guardrails import Guardrail

    rail = Guardrail(
        name="no-diagnosis", blocked_terms=["diagnosis"], replacement="I can't give medical advice."
    )
    async with realtime_harness(
        ["Hello, thanks for calling.", "My diagnosis is that you have a cavity.", "Fine."],
        ["What do I have?"],
        system_prompt="Be helpful.",
        agent_kwargs={"guardrails": [rail]},
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=500, timeout=10)
        await call.hangup()
        await h.wait_ended()
    fake, ended = h.engine, h.ended

    events = fake.connections[0].events
    assert any(e["type"] == "conversation.item.truncate" for e in events)
    says = [e for e in events if e["type"] == "response.create" and "medical advice" in str(e)]
    assert len(says) == 1  # the replacement was spoken by the engine
    assert not any("diagnosis" in t["text"] for t in ended[0]["transcript"])
