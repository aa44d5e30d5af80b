"""Tools, system tools and guardrails in whole pipeline calls (fake carrier, fake LLM with tool calls)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from getpatter.guardrails import Guardrail
from getpatter.tools import Tool, tool
from tests.fakes.openai_chat import Reply
from tests.fakes.server import running
from tests.fakes.webhook_tool import FakeWebhookTool, Step
from tests.integration.harness import call_harness


async def _one_turn(h: Any, *, settle_ms: float = 300) -> Any:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=settle_ms, timeout=10)
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
    await call.wait_agent_quiet(quiet_ms=settle_ms, timeout=15)
    return call


async def test_handler_tool_result_reaches_the_next_llm_request() -> None:
    @tool
    def lookup_order(order_id: str) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: The order number.
        """
        return {"order_id": order_id, "status": "shipped"}

    async with call_harness(
        utterances=["Where is order 42?"],
        replies=[Reply(tool_calls=[("lookup_order", '{"order_id": "42"}')]), "Your order has shipped."],
        agent_kwargs={"tools": [lookup_order]},
    ) as h:
        call = await _one_turn(h)
        await call.hangup()
        await h.wait_ended()

    first, second = h.llm.requests[0], h.llm.requests[1]
    names = [t["function"]["name"] for t in first["tools"]]
    assert names == ["lookup_order", "transfer_call", "end_call"]
    assert first["tools"][0]["function"]["parameters"]["properties"]["order_id"]["type"] == "string"
    tool_msg = second["messages"][-1]
    assert tool_msg["role"] == "tool" and json.loads(tool_msg["content"]) == {
        "order_id": "42",
        "status": "shipped",
    }
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Your order has shipped."}
    tool_events = [t for t in h.transcripts if t["role"] == "tool"]
    assert [(t["tool_name"], t["tool_result"] is None) for t in tool_events] == [
        ("lookup_order", True),
        ("lookup_order", False),
    ]


async def test_webhook_tool_is_retried_after_a_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_ALLOW_PRIVATE_WEBHOOKS", "1")
    hook = FakeWebhookTool([Step(status=500), Step(json={"slots": ["10:00", "11:30"]})])
    async with running(hook.app) as hook_srv:
        check = Tool(
            name="check_slots",
            description="Free appointment slots",
            parameters={"type": "object", "properties": {"day": {"type": "string"}}},
            webhook_url=hook_srv.http_url + "/slots",
        )
        async with call_harness(
            utterances=["Any slots on Monday?"],
            replies=[Reply(tool_calls=[("check_slots", '{"day": "Monday"}')]), "Ten or eleven thirty."],
            agent_kwargs={"tools": [check]},
        ) as h:
            call = await _one_turn(h)
            await call.hangup()
            await h.wait_ended()

    assert hook.attempts == [1, 2]
    body = hook.requests[1].body
    assert body["tool"] == "check_slots" and body["arguments"] == {"day": "Monday"}
    assert body["call_id"] == call.sid and body["caller"] == "+15550001111"
    assert json.loads(h.llm.requests[1]["messages"][-1]["content"]) == {"slots": ["10:00", "11:30"]}


async def test_a_timing_out_tool_returns_the_error_payload_and_the_call_goes_on() -> None:
    @tool(timeout_s=0.2)
    async def slow_lookup(query: str) -> str:
        """Slow.

        Args:
            query: What to look up.
        """
        await asyncio.sleep(5)
        return "never"

    async with call_harness(
        utterances=["Look it up"],
        replies=[Reply(tool_calls=[("slow_lookup", '{"query": "x"}')]), "Sorry, that took too long."],
        agent_kwargs={"tools": [slow_lookup]},
    ) as h:
        call = await _one_turn(h)
        await call.hangup()
        await h.wait_ended()

    payload = json.loads(h.llm.requests[1]["messages"][-1]["content"])
    assert payload["fallback"] is True and "error" in payload
    assert h.ended[0]["transcript"][-1]["text"] == "Sorry, that took too long."


async def test_transfer_call_updates_the_live_twilio_call_with_dial() -> None:
    async with call_harness(
        utterances=["Put me through to sales"],
        replies=[Reply(tool_calls=[("transfer_call", '{"number": "+15550009999"}')])],
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_closed(timeout=10)
        await h.wait_ended()

    updates = [
        r for r in h.twilio.requests if r.method == "POST" and r.path.endswith(f"/Calls/{call.sid}.json")
    ]
    assert len(updates) == 1
    assert "<Dial>+15550009999</Dial>" in str(updates[0].form["Twiml"])
    assert call.ended_by == "rest-twiml"


async def test_invalid_transfer_number_is_refused_without_touching_the_call() -> None:
    async with call_harness(
        utterances=["Transfer me"],
        replies=[
            Reply(tool_calls=[("transfer_call", '{"number": "555-1234"}')]),
            "I can't dial that number.",
        ],
    ) as h:
        call = await _one_turn(h)
        await call.hangup()
        await h.wait_ended()

    assert not [r for r in h.twilio.requests if r.path.endswith(f"/Calls/{call.sid}.json")]
    assert json.loads(h.llm.requests[1]["messages"][-1]["content"])["fallback"] is True


async def test_end_call_hangs_up_only_after_the_goodbye_was_heard() -> None:
    goodbye = "Thanks for calling, have a wonderful day. Goodbye!"
    async with call_harness(
        utterances=["That's all, thanks"],
        replies=[Reply(tool_calls=[("end_call", '{"reason": "caller is done"}')]), goodbye],
        ms_per_char=20.0,
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_closed(timeout=15)
        await h.wait_ended()

    assert call.ended_by == "rest-completed"
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": goodbye}
    assert len(call.played_audio_mulaw()) >= (len(h.tts.texts[0]) + len(goodbye)) * 20 * 8 * 0.95


async def test_guardrail_blocks_the_sentence_before_tts_and_speaks_the_replacement() -> None:
    rail = Guardrail(
        name="no-diagnosis", blocked_terms=["diagnosis"], replacement="I can't give medical advice."
    )
    async with call_harness(
        utterances=["What do I have?"],
        replies=["Let me think. My diagnosis is a cavity. Brush twice a day."],
        agent_kwargs={"guardrails": [rail]},
    ) as h:
        call = await _one_turn(h)
        await call.hangup()
        await h.wait_ended()

    assert not any("diagnosis" in t.lower() for t in h.tts.texts)
    assert h.tts.texts[-2:] == ["Let me think.", "I can't give medical advice."]
    assert h.ended[0]["transcript"][-1]["text"] == "Let me think. I can't give medical advice."
