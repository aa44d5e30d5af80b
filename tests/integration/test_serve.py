"""``phone.serve()`` on a real port: number auto-config, a live call, and a clean ``disconnect()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from getpatter import Agent, Patter
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


@dataclass
class _Served:
    twilio: FakeTwilio
    phone: Patter
    agent: Agent
    serving: asyncio.Task[None]
    port: int


@contextlib.asynccontextmanager
async def _serving_twilio(first_message: str = "", **serve_options: Any) -> AsyncIterator[_Served]:
    """``phone.serve()`` on port 0 over fake Twilio, Deepgram and ElevenLabs; yields once it listens."""
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
            first_message=first_message,
        )
        serving = asyncio.create_task(phone.serve(agent, port=0, on_message=lambda e: "ok", **serve_options))
        port = await asyncio.wait_for(phone.ready, 10)
        yield _Served(twilio, phone, agent, serving, port)
    await twilio.aclose()


async def test_serve_configures_number_answers_and_disconnect_ends_live_calls() -> None:
    ended: list[dict[str, Any]] = []
    async with _serving_twilio("Hello there.", on_call_end=ended.append) as s:
        twilio, phone = s.twilio, s.phone
        base = f"http://127.0.0.1:{s.port}"
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
        await asyncio.wait_for(s.serving, 10)
        await call.wait_closed(timeout=5)

    assert call.close_code == 1001
    assert len(ended) == 1 and ended[0]["call_id"] == call.sid
    assert ended[0]["transcript"] == [{"role": "assistant", "text": "Hello there."}]
    assert ended[0]["reason"] == "server_shutdown"


async def test_disconnect_mid_utterance_ends_the_call_promptly() -> None:
    ended: list[dict[str, Any]] = []
    long_greeting = "Hello there, this is a long greeting so that the server stops while it is still playing."
    async with _serving_twilio(long_greeting, on_call_end=ended.append) as s:
        call = await s.twilio.start_inbound_call(f"http://127.0.0.1:{s.port}", HOST)
        await call.wait_for_agent_audio(timeout=5)
        await asyncio.sleep(0.3)  # mid-greeting
        await asyncio.wait_for(s.phone.disconnect(), 5)  # bounded: a hang here is the bug
        await asyncio.wait_for(s.serving, 5)
        await call.wait_closed(timeout=5)

    assert call.close_code == 1001
    assert len(ended) == 1 and ended[0]["reason"] == "server_shutdown"
    heard = ended[0]["transcript"][0]["text"] if ended[0]["transcript"] else ""
    assert long_greeting.startswith(heard) and heard != long_greeting


async def test_the_ready_pattern_from_the_docs_serves_and_places_a_call() -> None:
    """``asyncio.create_task(phone.serve(agent)); await phone.ready; await phone.call(...)``, read before the
    serve task has run a single step."""
    async with _serving_twilio() as s:
        phone = s.phone
        assert isinstance(s.port, int) and s.port > 0
        call_id = await phone.call("+15550003333")
        assert s.twilio.calls[call_id].direction == "outbound-api"
        await phone.disconnect()
        await asyncio.wait_for(s.serving, 10)
        # A second serve() gets a fresh ready.
        serving = asyncio.create_task(phone.serve(s.agent, port=0, on_message=lambda e: "ok"))
        assert await asyncio.wait_for(phone.ready, 10) > 0
        await phone.disconnect()
        await asyncio.wait_for(serving, 10)


async def test_ready_reports_why_serve_failed_before_listening() -> None:
    phone = Patter(carrier=Twilio("AC" + "1" * 32, "token"), phone_number=NUMBER, webhook_url=HOST)
    agent = phone.agent("unused", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
    serving = asyncio.create_task(phone.serve(agent, port=70000, on_message=lambda e: "ok"))
    with pytest.raises(PatterConfigError, match="port must be"):
        await asyncio.wait_for(phone.ready, 10)
    with pytest.raises(PatterConfigError):
        await serving


async def _serve_telnyx(telnyx: Any, srv_url: str) -> tuple[Patter, asyncio.Task[None]]:
    from getpatter.carriers.telnyx.config import Telnyx

    phone = Patter(
        carrier=Telnyx(
            api_key=telnyx.api_key,
            connection_id=telnyx.connection_id,
            public_key=telnyx.public_key,
            base_url=srv_url + "/v2",
        ),
        phone_number=NUMBER,
        webhook_url=HOST,
    )
    agent = phone.agent("unused", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
    serving = asyncio.create_task(phone.serve(agent, port=0, on_message=lambda e: "ok"))
    await asyncio.wait_for(phone.ready, 10)
    return phone, serving


async def _until(check: Any, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


async def test_serve_points_the_telnyx_number_and_application_at_us(caplog: pytest.LogCaptureFixture) -> None:
    from tests.fakes.telnyx import FakeTelnyx

    caplog.set_level(logging.INFO, "getpatter")
    telnyx = FakeTelnyx()
    number = telnyx.add_number(NUMBER)  # owned, but on no application yet
    async with running(telnyx.app) as tl:
        phone, serving = await _serve_telnyx(telnyx, tl.http_url)
        await _until(lambda: number["connection_id"] == telnyx.connection_id)
        await phone.disconnect()
        await asyncio.wait_for(serving, 10)
    assert telnyx.application["webhook_event_url"] == f"https://{HOST}/webhooks/telnyx/voice"
    assert telnyx.application["webhook_api_version"] == "2"
    assert [r.action for r in telnyx.requests] == ["list_numbers", "update_application", "update_number"]
    assert all(r.authorization == f"Bearer {telnyx.api_key}" and r.status == 200 for r in telnyx.requests)
    assert f"Telnyx number {NUMBER}: attached to application {telnyx.connection_id}" in caplog.text
    await telnyx.aclose()


async def test_serve_with_a_telnyx_number_not_on_the_account_says_what_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.fakes.telnyx import FakeTelnyx

    telnyx = FakeTelnyx()
    async with running(telnyx.app) as tl:
        phone, serving = await _serve_telnyx(telnyx, tl.http_url)
        await _until(lambda: "is not a number of this Telnyx account" in caplog.text)
        await phone.disconnect()
        await asyncio.wait_for(serving, 10)
    assert "attach +15550002222 to Call Control application" in caplog.text
    assert [r.action for r in telnyx.requests] == ["list_numbers"]
    assert telnyx.application["webhook_event_url"] is None
    await telnyx.aclose()
