"""Whole calls over Telnyx through the real server: fake Telnyx dials in, fake vendors answer on 127.0.0.1.

The Telnyx twin of ``tests/integration/harness.py``: same fake Deepgram / OpenAI chat / ElevenLabs, same
product code path (``Patter.asgi_app``), with ``Telnyx(...)`` as the carrier. The product reaches the fake
Telnyx REST API through ``TELNYX_BASE_URL`` (the official SDK's override), set only while the app is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from getpatter import Patter
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.llm.openai import OpenAILLM
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes._patience import patient
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.server import Running, running
from tests.fakes.telnyx import FakeTelnyx, FakeTelnyxCall

PUBLIC_HOST = "agent.example.test"
NUMBER = "+15550002222"


@dataclass
class TelnyxHarness:
    phone: Patter
    telnyx: FakeTelnyx
    deepgram: FakeDeepgram
    llm: FakeOpenAIChat
    tts: FakeElevenLabs
    server: Running
    ended: list[dict[str, Any]] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)
    ended_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def dial(self, **kwargs: Any) -> FakeTelnyxCall:
        return await self.telnyx.start_inbound_call(self.server.http_url, PUBLIC_HOST, **kwargs)

    async def wait_ended(self, count: int = 1, timeout: float = 10.0) -> None:
        async def until() -> None:
            while len(self.ended) < count:
                self.ended_event.clear()
                await self.ended_event.wait()

        await asyncio.wait_for(until(), patient(timeout))


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


@contextlib.asynccontextmanager
async def telnyx_harness(
    *,
    codec: str = "L16",
    utterances: Sequence[str] = (),
    replies: Sequence[Reply | str] = (),
    first_message: str = "Hello, thanks for calling.",
    system_prompt: str = "You are a helpful receptionist.",
    ms_per_char: float = 20.0,
    signed: bool = True,
    strict_signatures: bool = False,
    allow_unsigned: bool | None = None,
    on_message: Callable[..., Any] | None = None,
    patter_kwargs: dict[str, Any] | None = None,
    agent_kwargs: dict[str, Any] | None = None,
    providers: dict[str, Any] | None = None,
) -> AsyncIterator[TelnyxHarness]:
    """``on_message`` replaces the LLM (custom reply callback, may take ``(event, call_control)``);
    ``providers`` may replace ``stt``/``tts`` with real clients of other fake vendors."""
    telnyx = FakeTelnyx()
    deepgram = FakeDeepgram(utterances=utterances)
    llm = FakeOpenAIChat(replies=list(replies))
    tts = FakeElevenLabs(ms_per_char=ms_per_char)
    async with (
        running(telnyx.app) as telnyx_srv,
        running(deepgram.app) as dg_srv,
        running(llm.app) as llm_srv,
        running(tts.app) as tts_srv,
    ):
        carrier = Telnyx(
            api_key=telnyx.api_key,
            connection_id=telnyx.connection_id,
            public_key=telnyx.public_key if signed else "",
            allow_unsigned_webhooks=(not signed) if allow_unsigned is None else allow_unsigned,
            stream_codec=codec,
            strict_signatures=strict_signatures,
        )
        phone = Patter(carrier=carrier, phone_number=NUMBER, webhook_url=PUBLIC_HOST, **(patter_kwargs or {}))
        chosen: dict[str, Any] = {
            "stt": DeepgramSTT(api_key=deepgram.api_key, base_url=dg_srv.ws_url),
            "llm": None if on_message else OpenAILLM(api_key=llm.api_key, base_url=llm_srv.http_url + "/v1"),
            "tts": ElevenLabsTTS(api_key=tts.api_key, base_url=tts_srv.http_url),
        }
        chosen.update(providers or {})
        agent = phone.agent(system_prompt, first_message=first_message, **chosen, **(agent_kwargs or {}))
        ref: list[TelnyxHarness] = []

        async def on_call_start(data: dict[str, Any]) -> None:
            ref[0].started.append(data)

        async def on_call_end(data: dict[str, Any]) -> None:
            ref[0].ended.append(data)
            ref[0].ended_event.set()

        with _env("TELNYX_BASE_URL", telnyx_srv.http_url + "/v2"):
            app = phone.asgi_app(
                agent, on_call_start=on_call_start, on_call_end=on_call_end, on_message=on_message
            )
        async with running(app) as server:
            h = TelnyxHarness(phone, telnyx, deepgram, llm, tts, server)
            ref.append(h)
            try:
                yield h
            finally:
                await telnyx.aclose()
                state = getattr(phone, "_state", None)
                if state is not None:
                    await state.carrier.close()
