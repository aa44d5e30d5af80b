"""Whole calls through the real server: fake Twilio dials in, fake vendors answer on 127.0.0.1.

Only the vendor edges are fakes; everything between them is the product (server, session, pipeline,
codecs, playout) on real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from getpatter import Patter
from getpatter.call.session import Observer
from getpatter.carriers.twilio.config import Twilio
from getpatter.llm.openai import OpenAILLM
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes._patience import patient
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.server import Running, running
from tests.fakes.twilio import FakeCall, FakeTwilio

PUBLIC_HOST = "agent.example.test"
NUMBER = "+15550002222"


@dataclass(frozen=True)
class VendorKeys:
    """Secrets a test chooses for the fakes (``None``: the fake's own default)."""

    twilio_auth_token: str | None = None
    deepgram: str | None = None
    openai: str | None = None
    elevenlabs: str | None = None


def _chosen(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


@dataclass
class Harness:
    phone: Patter
    twilio: FakeTwilio
    deepgram: FakeDeepgram
    llm: FakeOpenAIChat
    tts: FakeElevenLabs
    server: Running
    ended: list[dict[str, Any]] = field(default_factory=list)
    transcripts: list[dict[str, Any]] = field(default_factory=list)
    ended_event: asyncio.Event = field(default_factory=asyncio.Event)
    transcript_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def dial(self, **kwargs: Any) -> FakeCall:
        return await self.twilio.start_inbound_call(self.server.http_url, PUBLIC_HOST, **kwargs)

    async def stream_params(self, call_sid: str, **kwargs: Any) -> dict[str, str]:
        """The ``customParameters`` Twilio would echo for ``call_sid`` (with its signed stream token)."""
        return await self.twilio.stream_params(self.server.http_url, PUBLIC_HOST, call_sid, **kwargs)

    async def wait_ended(self, count: int = 1, timeout: float = 10.0) -> None:
        async def until() -> None:
            while len(self.ended) < count:
                self.ended_event.clear()
                await self.ended_event.wait()

        await asyncio.wait_for(until(), patient(timeout))

    async def wait_transcript(self, role: str, text: str, timeout: float = 10.0) -> None:
        """Wait until a live transcript line ``(role, text)`` arrived (``on_transcript``)."""

        async def until() -> None:
            while not any((t["role"], t["text"]) == (role, text) for t in self.transcripts):
                self.transcript_event.clear()
                await self.transcript_event.wait()

        await asyncio.wait_for(until(), patient(timeout))


@contextlib.asynccontextmanager
async def call_harness(
    *,
    utterances: Sequence[str] = (),
    replies: Sequence[Reply | str] | Callable[[dict[str, Any]], Reply | str] = (),
    first_message: str = "Hello, thanks for calling.",
    system_prompt: str = "You are a helpful receptionist.",
    ms_per_char: float = 20.0,
    agent_kwargs: dict[str, Any] | None = None,
    serve_kwargs: dict[str, Any] | None = None,
    use_llm: bool = True,
    stt_for_twilio: bool = False,
    providers: dict[str, Any] | None = None,
    observers: Sequence[Observer] = (),
    patter_kwargs: dict[str, Any] | None = None,
    keys: VendorKeys = VendorKeys(),
) -> AsyncIterator[Harness]:
    """``providers`` may replace any of ``stt``/``llm``/``tts`` (and add ``vad``) with real objects, e.g.
    the offline ones; the fakes for the others still run. ``observers`` ride on every call's event bus
    next to the server's own (e.g. ``lambda bus, ctx: bus.on(UsageRecorded, seen.append)``). ``keys``: the
    vendors' secrets, when the test must know them (e.g. to look for leaks)."""
    twilio = FakeTwilio(owned_numbers=(NUMBER,), **_chosen(auth_token=keys.twilio_auth_token))
    deepgram = FakeDeepgram(utterances=utterances, **_chosen(api_key=keys.deepgram))
    llm = FakeOpenAIChat(
        replies=replies if callable(replies) else list(replies), **_chosen(api_key=keys.openai)
    )
    tts = FakeElevenLabs(ms_per_char=ms_per_char, **_chosen(api_key=keys.elevenlabs))
    async with (
        running(twilio.app) as twilio_srv,
        running(deepgram.app) as dg_srv,
        running(llm.app) as llm_srv,
        running(tts.app) as tts_srv,
    ):
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=twilio_srv.http_url),
            phone_number=NUMBER,
            webhook_url=PUBLIC_HOST,
            **(patter_kwargs or {}),
        )
        stt_cls = DeepgramSTT.for_twilio if stt_for_twilio else DeepgramSTT
        chosen: dict[str, Any] = {
            "stt": stt_cls(api_key=deepgram.api_key, base_url=dg_srv.ws_url),
            "llm": OpenAILLM(api_key=llm.api_key, base_url=llm_srv.http_url + "/v1") if use_llm else None,
            "tts": ElevenLabsTTS(api_key=tts.api_key, base_url=tts_srv.http_url),
        }
        chosen.update(providers or {})
        agent = phone.agent(system_prompt, first_message=first_message, **chosen, **(agent_kwargs or {}))
        harness_ref: list[Harness] = []

        async def on_call_end(data: dict[str, Any]) -> None:
            harness_ref[0].ended.append(data)
            harness_ref[0].ended_event.set()

        async def on_transcript(data: dict[str, Any]) -> None:
            harness_ref[0].transcripts.append(data)
            harness_ref[0].transcript_event.set()

        kwargs: dict[str, Any] = {"on_call_end": on_call_end, "on_transcript": on_transcript}
        kwargs.update(serve_kwargs or {})
        app = phone.asgi_app(agent, **kwargs)
        app.state.patter.runtime.observers.extend(observers)
        async with running(app) as server:
            h = Harness(phone, twilio, deepgram, llm, tts, server)
            harness_ref.append(h)
            try:
                yield h
            finally:
                for call in list(twilio.calls.values()):
                    with contextlib.suppress(Exception):
                        await call.aclose()
                await twilio.aclose()
