"""Every script in ``examples/`` answers a real (fake-carrier) call, offline, so the examples cannot rot.

Each example exposes ``build(...) -> (Patter, Agent)`` with ``base_url`` overrides and ``run(phone,
agent, port)``, which is exactly what its ``__main__`` does. Here the vendors are the local fakes from
``tests/fakes/`` (or the offline providers), the carrier dials in, and we check what the example printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from getpatter import Patter, PatterConfigError
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.openai_realtime import FakeOpenAIRealtime
from tests.fakes.server import running
from tests.fakes.telnyx import FakeTelnyx
from tests.fakes.twilio import FakeTwilio

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HOST = "agent.example.test"
NUMBER = "+15550002222"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"getpatter_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.asynccontextmanager
async def serving(example: ModuleType, phone: Patter, agent: Any) -> AsyncIterator[str]:
    """Run the example's ``run()`` on a free port; yields the local base URL; disconnects at the end."""
    task = asyncio.create_task(example.run(phone, agent, port=0))
    async with asyncio.timeout(10):
        while True:
            try:
                port = await asyncio.shield(phone.ready)
                break
            except PatterConfigError:  # serve() has not created its runner yet
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await phone.disconnect()
        await asyncio.wait_for(task, 10)


async def printed(
    capsys: pytest.CaptureFixture[str], done: Callable[[str], bool], timeout: float = 10
) -> str:
    """Everything the example printed, once ``done(text)`` holds."""
    text = ""
    async with asyncio.timeout(timeout):
        while not done(text):
            text += capsys.readouterr().out
            await asyncio.sleep(0.02)
    return text


async def one_turn(call: Any) -> None:
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> FakeTwilio:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", twilio.account_sid)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", twilio.auth_token)
    monkeypatch.setenv("TWILIO_PHONE_NUMBER", NUMBER)
    monkeypatch.delenv("WEBHOOK_URL", raising=False)
    monkeypatch.delenv("PATTER_LOG_DIR", raising=False)
    return twilio


@contextlib.asynccontextmanager
async def pipeline_fakes(
    monkeypatch: pytest.MonkeyPatch, utterances: list[str], replies: list[Reply | str]
) -> AsyncIterator[dict[str, Any]]:
    deepgram, llm, tts = (
        FakeDeepgram(utterances=utterances),
        FakeOpenAIChat(replies=replies),
        FakeElevenLabs(),
    )
    monkeypatch.setenv("DEEPGRAM_API_KEY", deepgram.api_key)
    monkeypatch.setenv("OPENAI_API_KEY", llm.api_key)
    monkeypatch.setenv("ELEVENLABS_API_KEY", tts.api_key)
    async with running(deepgram.app) as dg, running(llm.app) as oa, running(tts.app) as el:
        yield {
            "llm": llm,
            "urls": {
                "deepgram_base_url": dg.ws_url,
                "openai_base_url": oa.http_url + "/v1",
                "elevenlabs_base_url": el.http_url,
            },
        }


async def test_realtime_inbound(
    twilio_env: FakeTwilio, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("realtime_inbound")
    engine = FakeOpenAIRealtime(
        script=["Thanks for calling Acme Dental.", "We open at nine."], utterances=["When do you open?"]
    )
    monkeypatch.setenv("OPENAI_API_KEY", engine.api_key)
    async with running(twilio_env.app) as tw, running(engine.app) as rt:
        phone, agent = example.build(
            twilio_base_url=tw.http_url, openai_base_url=rt.http_url + "/v1", webhook_url=HOST
        )
        async with serving(example, phone, agent) as base:
            call = await twilio_env.start_inbound_call(base, HOST)
            await one_turn(call)
            await call.hangup()
            out = await printed(capsys, lambda t: "ended" in t and "We open at nine." in t)
        assert twilio_env.number(NUMBER)["voice_url"] == f"https://{HOST}/webhooks/twilio/voice"
        await twilio_env.aclose()
    assert "user: When do you open?" in out
    update = next(e for e in engine.connections[0].events if e["type"] == "session.update")
    assert "Acme Dental" in update["session"]["instructions"]


async def test_pipeline_agent(
    twilio_env: FakeTwilio, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("pipeline_agent")
    async with (
        pipeline_fakes(monkeypatch, ["Do you sell helmets?"], ["Yes, from thirty dollars."]) as fakes,
        running(twilio_env.app) as tw,
    ):
        phone, agent = example.build(twilio_base_url=tw.http_url, webhook_url=HOST, **fakes["urls"])
        async with serving(example, phone, agent) as base:
            call = await twilio_env.start_inbound_call(base, HOST)
            await one_turn(call)
            await call.hangup()
            out = await printed(capsys, lambda t: "thirty dollars" in t)
        await twilio_env.aclose()
    assert "user: Do you sell helmets?" in out
    assert "assistant: Hi, you've reached Acme Bikes." in out
    assert fakes["llm"].requests[0]["model"] == "gpt-4o-mini"


async def test_tools_agent(
    twilio_env: FakeTwilio, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("tools_agent")
    replies: list[Reply | str] = [
        Reply(tool_calls=[("order_status", '{"order_id": "42"}')]),
        "Order 42 shipped on Monday.",
    ]
    async with (
        pipeline_fakes(monkeypatch, ["Where is order 42?"], replies) as fakes,
        running(twilio_env.app) as tw,
    ):
        phone, agent = example.build(twilio_base_url=tw.http_url, webhook_url=HOST, **fakes["urls"])
        async with serving(example, phone, agent) as base:
            call = await twilio_env.start_inbound_call(base, HOST)
            await one_turn(call)
            await call.hangup()
            out = await printed(capsys, lambda t: "assistant: Order 42 shipped" in t)
        await twilio_env.aclose()
    assert "tool order_status({'order_id': '42'}) -> " in out and "shipped on Monday" in out
    names = [t["function"]["name"] for t in fakes["llm"].requests[0]["tools"]]
    assert names == ["order_status", "opening_hours", "transfer_call", "end_call"]


async def test_custom_on_message_hangs_up_after_goodbye(
    twilio_env: FakeTwilio, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("custom_on_message")
    async with (
        pipeline_fakes(monkeypatch, ["What are your hours?", "Great, bye."], []) as fakes,
        running(twilio_env.app) as tw,
    ):
        urls = {k: v for k, v in fakes["urls"].items() if k != "openai_base_url"}
        phone, agent = example.build(twilio_base_url=tw.http_url, webhook_url=HOST, **urls)
        async with serving(example, phone, agent) as base:
            call = await twilio_env.start_inbound_call(base, HOST)
            await one_turn(call)
            await call.say_tone(500)  # "Great, bye." -> the handler hangs up after its goodbye
            out = await printed(capsys, lambda t: "ended" in t, timeout=15)
        await twilio_env.aclose()
    assert "ended (agent_hangup)" in out
    assert "assistant: We are open nine to five, Monday to Friday." in out
    assert "assistant: Thanks for calling. Goodbye!" in out
    assert fakes["llm"].requests == []  # no LLM involved


async def test_telnyx_agent(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    example = load("telnyx_agent")
    telnyx = FakeTelnyx()
    monkeypatch.setenv("TELNYX_API_KEY", telnyx.api_key)
    monkeypatch.setenv("TELNYX_CONNECTION_ID", telnyx.connection_id)
    monkeypatch.setenv("TELNYX_PUBLIC_KEY", telnyx.public_key)
    monkeypatch.setenv("TELNYX_PHONE_NUMBER", NUMBER)
    async with (
        pipeline_fakes(monkeypatch, ["My sink is leaking."], ["Sorry to hear that. What's your name?"]) as f,
        running(telnyx.app) as tx,
    ):
        phone, agent = example.build(telnyx_base_url=tx.http_url + "/v2", webhook_url=HOST, **f["urls"])
        async with serving(example, phone, agent) as base:
            call = await telnyx.start_inbound_call(base, HOST)
            await one_turn(call)
            await call.hangup()
            out = await printed(capsys, lambda t: "ended" in t)
    assert "user: My sink is leaking." in out
    assert "assistant: Sorry to hear that. What's your name?" in out


async def test_persistence_writes_and_reads_back_the_call(
    twilio_env: FakeTwilio,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    example = load("persistence")
    root = tmp_path / "call-logs"
    async with (
        pipeline_fakes(monkeypatch, ["Are you open today?"], ["Yes, until six."]) as fakes,
        running(twilio_env.app) as tw,
    ):
        phone, agent = example.build(
            log_dir=root, twilio_base_url=tw.http_url, webhook_url=HOST, **fakes["urls"]
        )
        async with serving(example, phone, agent) as base:
            call = await twilio_env.start_inbound_call(base, HOST)
            await one_turn(call)
            await call.hangup()
            out = await printed(capsys, lambda t: "saved;" in t)
        await twilio_env.aclose()
    assert f"Call {call.sid} saved; 1 call(s) under {root}" in out
    async with asyncio.timeout(5):  # the final metadata rewrite runs off the event loop
        while (calls := example.saved_calls(root))[0]["ended_at"] is None:
            await asyncio.sleep(0.02)
    assert calls[0]["call_id"] == call.sid
    texts = [(t["role"], t["text"]) for t in calls[0]["transcript"]]
    assert ("user", "Are you open today?") in texts and ("assistant", "Yes, until six.") in texts


async def test_local_offline(twilio_env: FakeTwilio, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("faster_whisper", reason="needs the 'local' extra")
    from getpatter.local import LocalTTS

    example = load("local_offline")
    caller_voice = LocalTTS(gain_db=0)
    speech = b"".join([chunk async for chunk in caller_voice.synthesize("What are your opening hours?")])
    async with running(twilio_env.app) as tw:
        phone, agent = example.build(twilio_base_url=tw.http_url, webhook_url=HOST)
        async with serving(example, phone, agent) as base:
            call = await twilio_env.start_inbound_call(base, HOST)
            await call.wait_for_agent_audio(timeout=30)
            await call.wait_agent_quiet(quiet_ms=300, timeout=30)
            await call.say(speech)
            await call.silence(800)
            out = await printed(capsys, lambda t: "Monday to Friday" in t, timeout=60)
            await call.hangup()
        await twilio_env.aclose()
    assert "assistant: Thanks for calling Acme Dental, this is Ava." in out
    assert "hours" in out.lower()
