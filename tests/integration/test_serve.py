"""``phone.serve()`` on a real port: number auto-config, a live call, and a clean ``disconnect()``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from getpatter import Patter
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import PatterConfigError
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio

HOST = "agent.example.test"
NUMBER = "+15550002222"


async def test_serve_configures_number_answers_and_disconnect_ends_live_calls() -> None:
    twilio, deepgram, tts = FakeTwilio(owned_numbers=(NUMBER,)), FakeDeepgram(), FakeElevenLabs()
    ended: list[dict[str, Any]] = []
    async with running(twilio.app) as tw, running(deepgram.app) as dg, running(tts.app) as el:
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=tw.http_url),
            phone_number=NUMBER,
            webhook_url=HOST,
        )
        agent = phone.agent(
            "unused",
            stt=DeepgramSTT(api_key=deepgram.api_key, base_url=dg.ws_url),
            tts=ElevenLabsTTS(api_key=tts.api_key, base_url=el.http_url),
            first_message="Hello there.",
        )
        serving = asyncio.create_task(
            phone.serve(agent, port=0, on_message=lambda e: "ok", on_call_end=ended.append)
        )
        while phone._runner is None:  # serve() creates the runner right away
            await asyncio.sleep(0.01)
        port = await asyncio.wait_for(phone.ready, 5)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            assert (await client.get(base + "/health")).json()["status"] == "ok"

        # The number now points at our webhook (best effort, logged).
        for _ in range(100):
            if twilio.number(NUMBER).get("voice_url"):
                break
            await asyncio.sleep(0.02)
        assert twilio.number(NUMBER)["voice_url"] == f"https://{HOST}/webhooks/twilio/voice"
        assert twilio.number(NUMBER)["voice_method"] == "POST"

        call = await twilio.start_inbound_call(base, HOST)
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=200, timeout=5)
        await phone.disconnect()
        await asyncio.wait_for(serving, 10)
        await call.wait_closed(timeout=5)

    assert call.close_code == 1001
    assert len(ended) == 1 and ended[0]["call_id"] == call.sid
    assert ended[0]["transcript"] == [{"role": "assistant", "text": "Hello there."}]
    assert ended[0]["reason"] == "server_shutdown"
    await twilio.aclose()


async def test_disconnect_mid_utterance_ends_the_call_promptly() -> None:
    twilio, deepgram, tts = FakeTwilio(owned_numbers=(NUMBER,)), FakeDeepgram(), FakeElevenLabs()
    ended: list[dict[str, Any]] = []
    long_greeting = "Hello there, this is a long greeting so that the server stops while it is still playing."
    async with running(twilio.app) as tw, running(deepgram.app) as dg, running(tts.app) as el:
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=tw.http_url),
            phone_number=NUMBER,
            webhook_url=HOST,
        )
        agent = phone.agent(
            "unused",
            stt=DeepgramSTT(api_key=deepgram.api_key, base_url=dg.ws_url),
            tts=ElevenLabsTTS(api_key=tts.api_key, base_url=el.http_url),
            first_message=long_greeting,
        )
        serving = asyncio.create_task(
            phone.serve(agent, port=0, on_message=lambda e: "ok", on_call_end=ended.append)
        )
        while phone._runner is None:
            await asyncio.sleep(0.01)
        port = await asyncio.wait_for(phone.ready, 5)
        call = await twilio.start_inbound_call(f"http://127.0.0.1:{port}", HOST)
        await call.wait_for_agent_audio(timeout=5)
        await asyncio.sleep(0.3)  # mid-greeting
        await asyncio.wait_for(phone.disconnect(), 5)  # bounded: a hang here is the bug
        await asyncio.wait_for(serving, 5)
        await call.wait_closed(timeout=5)
    await twilio.aclose()

    assert call.close_code == 1001
    assert len(ended) == 1 and ended[0]["reason"] == "server_shutdown"
    heard = ended[0]["transcript"][0]["text"] if ended[0]["transcript"] else ""
    assert long_greeting.startswith(heard) and heard != long_greeting


async def test_the_ready_pattern_from_the_docs_serves_and_places_a_call() -> None:
    """``asyncio.create_task(phone.serve(agent)); await phone.ready; await phone.call(...)``, read before the
    serve task has run a single step."""
    twilio, deepgram, tts = FakeTwilio(owned_numbers=(NUMBER,)), FakeDeepgram(), FakeElevenLabs()
    async with running(twilio.app) as tw, running(deepgram.app) as dg, running(tts.app) as el:
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=tw.http_url),
            phone_number=NUMBER,
            webhook_url=HOST,
        )
        agent = phone.agent(
            "unused",
            stt=DeepgramSTT(api_key=deepgram.api_key, base_url=dg.ws_url),
            tts=ElevenLabsTTS(api_key=tts.api_key, base_url=el.http_url),
        )
        serving = asyncio.create_task(phone.serve(agent, port=0, on_message=lambda e: "ok"))
        port = await asyncio.wait_for(phone.ready, 10)
        assert isinstance(port, int) and port > 0
        call_id = await phone.call("+15550003333")
        assert twilio.calls[call_id].direction == "outbound-api"
        await phone.disconnect()
        await asyncio.wait_for(serving, 10)
        # A second serve() gets a fresh ready.
        serving = asyncio.create_task(phone.serve(agent, port=0, on_message=lambda e: "ok"))
        assert await asyncio.wait_for(phone.ready, 10) > 0
        await phone.disconnect()
        await asyncio.wait_for(serving, 10)
    await twilio.aclose()


async def test_ready_reports_why_serve_failed_before_listening() -> None:
    phone = Patter(carrier=Twilio("AC" + "1" * 32, "token"), phone_number=NUMBER, webhook_url=HOST)
    agent = phone.agent("unused", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
    serving = asyncio.create_task(phone.serve(agent, port=70000, on_message=lambda e: "ok"))
    with pytest.raises(PatterConfigError, match="port must be"):
        await asyncio.wait_for(phone.ready, 10)
    with pytest.raises(PatterConfigError):
        await serving
