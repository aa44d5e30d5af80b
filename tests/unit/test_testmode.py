"""``phone.test()``: the terminal REPL, driven through in-memory streams and a real stdin pipe."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from getpatter import Patter, PatterConfigError
from getpatter.call.context import CallControl
from getpatter.engines.openai_realtime import OpenAIRealtime
from getpatter.llm.openai import OpenAILLM
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tools import tool
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.server import running

CALL_ID = re.compile(r"^test_[0-9a-f]{12}$")


def _agent(phone: Patter, **kwargs: Any) -> Any:
    return phone.agent("You are {name}'s assistant.", engine=OpenAIRealtime(api_key="sk-x"), **kwargs)


async def _run(phone: Patter, agent: Any, lines: str, **kwargs: Any) -> str:
    out = io.StringIO()
    await phone.test(agent, input=io.StringIO(lines), output=out, **kwargs)
    return out.getvalue()


async def test_on_message_replies_and_lifecycle_payloads() -> None:
    phone = Patter()
    agent = _agent(phone, first_message="Hi, this is {name}'s line.", variables={"name": "Ada"})
    started: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []

    async def on_message(event: dict[str, Any]) -> str:
        events.append(event)
        return f"You said: {event['text']}"

    text = await _run(
        phone,
        agent,
        "hello there\n\n/history\n/quit\n",
        on_message=on_message,
        on_call_start=started.append,
        on_call_end=ended.append,
    )
    assert CALL_ID.match(started[0]["call_id"])
    assert started[0] == {
        "call_id": started[0]["call_id"],
        "caller": "+15550000001",
        "callee": "+15550000002",
        "direction": "inbound",
        "custom_params": {},
        "telephony_provider": "test",
    }
    call_id = started[0]["call_id"]
    assert call_id in text and "+15550000001 -> +15550000002" in text
    assert "/quit, /hangup, /transfer <number>, /history" in text
    assert "Agent: Hi, this is Ada's line." in text
    assert "Agent: You said: hello there" in text
    assert "2. user: hello there" in text  # /history
    assert events[0]["history"][0]["text"] == "Hi, this is Ada's line."
    assert (events[0]["call_id"], events[0]["caller"], events[0]["callee"]) == (
        call_id,
        "+15550000001",
        "+15550000002",
    )
    end = ended[0]
    assert end["call_id"] == call_id and end["reason"] == "quit" and end["metrics"] is None
    assert end["transcript"] == [
        {"role": "assistant", "text": "Hi, this is Ada's line."},
        {"role": "user", "text": "hello there"},
        {"role": "assistant", "text": "You said: hello there"},
    ]
    assert isinstance(end["ended_at"], float)


async def test_two_argument_handler_gets_a_call_control_whose_transfer_prints() -> None:
    phone = Patter()
    ended: list[dict[str, Any]] = []

    async def on_message(event: dict[str, Any], call: CallControl) -> str:
        assert call.call_id == event["call_id"] and call.telephony_provider == "test"
        if "human" in event["text"]:
            await call.transfer("+15557654321")
            return "Transferring you now."
        return "ok"

    text = await _run(
        phone,
        _agent(phone),
        "hi\nI want a human\nnever read\n",
        on_message=on_message,
        on_call_end=ended.append,
    )
    assert "transferring the caller to +15557654321" in text
    assert ended[0]["reason"] == "transferred"
    assert [t["text"] for t in ended[0]["transcript"] if t["role"] == "user"] == ["hi", "I want a human"]


async def test_async_handler_hangup_ends_the_session() -> None:
    phone = Patter()
    ended: list[dict[str, Any]] = []

    async def on_message(event: dict[str, Any], call: CallControl) -> str:
        await call.hangup()
        return "Goodbye!"

    text = await _run(
        phone, _agent(phone), "bye\nnever read\n", on_message=on_message, on_call_end=ended.append
    )
    assert "the agent hung up" in text and "Agent: Goodbye!" in text
    assert ended[0]["reason"] == "agent_hangup"


async def test_commands_hangup_transfer_and_unknown() -> None:
    phone = Patter()
    ended: list[dict[str, Any]] = []
    text = await _run(
        phone,
        _agent(phone),
        "/history\n/bogus\n/transfer 555\n/transfer +15551234567\n",
        on_message=lambda e: "x",
        on_call_end=ended.append,
    )
    assert "(no conversation yet)" in text
    assert "unknown command /bogus" in text
    assert "usage: /transfer +15551234567" in text
    assert "transferring the caller to +15551234567" in text
    assert ended[0]["reason"] == "transferred"

    ended.clear()
    await _run(phone, _agent(phone), "/hangup\n", on_message=lambda e: "x", on_call_end=ended.append)
    assert ended[0]["reason"] == "caller_hangup"


async def test_on_call_start_overrides_apply() -> None:
    phone = Patter()
    agent = _agent(phone, first_message="Hello.")

    def on_start(data: dict[str, Any]) -> dict[str, Any]:
        return {"first_message": "Welcome back, {who}.", "variables": {"who": "Grace"}}

    text = await _run(phone, agent, "/quit\n", on_message=lambda e: "x", on_call_start=on_start)
    assert "Agent: Welcome back, Grace." in text and "Agent: Hello." not in text


async def test_llm_replies_stream_and_tools_run_through_the_executor() -> None:
    @tool
    def lookup_order(order_id: str) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: The order number.
        """
        return {"order_id": order_id, "status": "shipped"}

    fake = FakeOpenAIChat(
        replies=[
            Reply(tool_calls=[("lookup_order", '{"order_id": "42"}')]),
            "Order 42 has shipped.",
            Reply(tool_calls=[("end_call", '{"reason": "done"}')]),
            "Goodbye!",
        ]
    )
    ended: list[dict[str, Any]] = []
    async with running(fake.app) as srv:
        phone = Patter()
        llm = OpenAILLM(api_key=fake.api_key, base_url=srv.http_url + "/v1")
        agent = phone.agent(
            "You help with orders.",
            stt=DeepgramSTT(api_key="unused"),
            llm=llm,
            tts=ElevenLabsTTS(api_key="unused"),
            tools=[lookup_order],
            first_message="Orders desk.",
        )
        text = await _run(
            phone, agent, "where is order 42?\nthanks, bye\nnever read\n", on_call_end=ended.append
        )
    assert "[tool] lookup_order({'order_id': '42'})" in text
    # The banner names the pipeline's real models, not the unused realtime model and voice "alloy".
    banner = next(line for line in text.splitlines() if line.startswith("Agent: pipeline"))
    assert "stt=deepgram/nova-3" in banner and "llm=openai/gpt-4o-mini" in banner
    assert "tts=elevenlabs" in banner and "alloy" not in banner and "realtime" not in banner
    assert '"status": "shipped"' in text
    assert "Order 42 has shipped." in text and "Goodbye!" in text
    assert "the agent hung up" in text and ended[0]["reason"] == "agent_hangup"
    second = fake.requests[1]
    assert [t["function"]["name"] for t in second["tools"]] == ["lookup_order", "transfer_call", "end_call"]
    assert json.loads(second["messages"][-1]["content"]) == {"order_id": "42", "status": "shipped"}
    assert second["messages"][0] == {"role": "system", "content": "You help with orders."}
    assert second["messages"][1] == {"role": "assistant", "content": "Orders desk."}
    assert ended[0]["transcript"][-1] == {"role": "assistant", "text": "Goodbye!"}


async def test_no_reply_source_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    phone = Patter()
    agent = phone.agent("x", stt=DeepgramSTT(api_key="unused"), tts=ElevenLabsTTS(api_key="unused"))
    with pytest.raises(PatterConfigError, match="OPENAI_API_KEY"):
        await _run(phone, agent, "hi\n")
    with pytest.raises(TypeError, match="agent"):
        await _run(phone, "not an agent", "hi\n")  # type: ignore[arg-type]


def test_piped_stdin_drives_the_session() -> None:
    child = textwrap.dedent(
        """
        import asyncio
        from getpatter import Patter
        from getpatter.engines.openai_realtime import OpenAIRealtime
        phone = Patter()
        agent = phone.agent("x", engine=OpenAIRealtime(api_key="sk-x"), first_message="Ready.")
        asyncio.run(phone.test(agent, on_message=lambda e: e["text"].upper()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], input="shout this\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Agent: Ready." in done.stdout and "Agent: SHOUT THIS" in done.stdout
    assert "ended (quit)" in done.stdout  # end of input ends the session


async def test_an_agent_with_only_llm_runs_in_test_mode_and_is_refused_for_phone_calls() -> None:
    fake = FakeOpenAIChat(replies=["We open at nine."])
    async with running(fake.app) as srv:
        phone = Patter()
        agent = phone.agent(
            "You answer questions about the shop.",
            llm=OpenAILLM(api_key=fake.api_key, base_url=srv.http_url + "/v1"),
            first_message="Shop line.",
        )
        assert agent.provider == "pipeline" and agent.stt is None and agent.tts is None
        text = await _run(phone, agent, "when do you open?\n/quit\n")
    assert "Agent: Shop line." in text and "Agent: We open at nine." in text
    assert fake.requests[0]["messages"][-1] == {"role": "user", "content": "when do you open?"}
    with pytest.raises(PatterConfigError, match=r"no stt= and no tts=.*phone\.test\(\) only"):
        phone.asgi_app(agent)


def test_half_a_voice_pipeline_is_still_refused_at_construction() -> None:
    phone = Patter()
    with pytest.raises(PatterConfigError, match="needs tts="):
        phone.agent("x", stt=DeepgramSTT(api_key="unused"))
    with pytest.raises(PatterConfigError, match="needs stt="):
        phone.agent("x", tts=ElevenLabsTTS(api_key="unused"))
