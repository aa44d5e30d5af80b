"""Issue 9: one whole pipeline call per LLM (STT and TTS held at the default fakes).

Every call runs through the real server with the fake Twilio carrier; only the LLM is swapped
(``call_harness(providers=...)``) for its real client pointed at its strict fake on 127.0.0.1: one turn with
a ``@tool`` round trip; the exact transcript, and ``UsageRecorded`` carries the token counts the fake
reported for each of the two requests.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from getpatter.llm.anthropic import AnthropicLLM
from getpatter.llm.cerebras import CerebrasLLM
from getpatter.llm.fallback import FallbackLLM
from getpatter.llm.google import GoogleLLM
from getpatter.llm.groq import GroqLLM
from getpatter.llm.openai import OpenAICompatibleLLM, OpenAILLM
from getpatter.tools import tool
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.server import running
from tests.integration.harness import call_harness
from tests.unit.test_llm_cerebras import CerebrasGate
from tests.unit.test_llm_groq import GroqGate

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

from tests.integration._matrix import GREETING, Usage, run_call

# ------------------------------------------------------------------------------------------------ LLM

LLM_UTTERANCE = "Are you open on Monday?"
LLM_ANSWER = "Yes, from nine to five on Monday."
TOOL_ARGS = {"day": "Monday"}
#: (input, output) tokens the fake reports for the tool-call request, then for the answer.
LLM_USAGE = [(41, 9), (63, 11)]


@dataclass(frozen=True)
class LlmCase:
    #: Yields (llm, the fake of the answering vendor); servers live for the call.
    serve: Callable[[], contextlib.AbstractAsyncContextManager[tuple[Any, Any]]]
    #: ``provider_id`` the usage must be recorded under.
    provider: str


def _openai_replies() -> list[Reply]:
    return [
        Reply(tool_calls=[("opening_hours", json.dumps(TOOL_ARGS))], usage=LLM_USAGE[0]),
        Reply(text=LLM_ANSWER, usage=LLM_USAGE[1]),
    ]


def _anthropic_replies() -> list[fake_anthropic.Reply]:
    return [
        fake_anthropic.Reply(tool_calls=[("opening_hours", json.dumps(TOOL_ARGS))], usage=LLM_USAGE[0]),
        fake_anthropic.Reply(text=LLM_ANSWER, usage=LLM_USAGE[1]),
    ]


def _gemini_replies() -> list[fake_gemini.Reply]:
    return [
        fake_gemini.Reply(tool_calls=[("opening_hours", dict(TOOL_ARGS))], usage=LLM_USAGE[0]),
        fake_gemini.Reply(text=LLM_ANSWER, usage=LLM_USAGE[1]),
    ]


@contextlib.asynccontextmanager
async def _openai() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="sk-matrix", replies=_openai_replies())
    async with running(fake.app) as srv:
        yield OpenAILLM(api_key=fake.api_key, base_url=srv.http_url + "/v1"), fake


@contextlib.asynccontextmanager
async def _compatible() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="local-key", replies=_openai_replies())
    async with running(fake.app) as srv:
        yield OpenAICompatibleLLM(srv.http_url + "/v1", api_key=fake.api_key, model="llama3.1"), fake


@contextlib.asynccontextmanager
async def _groq() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="gsk_matrix", replies=_openai_replies())
    async with running(GroqGate(fake)) as srv:
        yield GroqLLM(api_key=fake.api_key, base_url=srv.http_url + "/openai/v1"), fake


@contextlib.asynccontextmanager
async def _cerebras() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="csk-matrix", replies=_openai_replies())
    async with running(CerebrasGate(fake)) as srv:
        yield CerebrasLLM(api_key=fake.api_key, base_url=srv.http_url + "/v1"), fake


@contextlib.asynccontextmanager
async def _anthropic() -> AsyncIterator[tuple[Any, Any]]:
    fake = fake_anthropic.FakeAnthropic(replies=_anthropic_replies())
    async with running(fake.app) as srv:
        yield AnthropicLLM(api_key=fake.api_key, base_url=srv.http_url), fake


@contextlib.asynccontextmanager
async def _google() -> AsyncIterator[tuple[Any, Any]]:
    fake = fake_gemini.FakeGemini(replies=_gemini_replies())
    async with running(fake.app) as srv:
        yield GoogleLLM(api_key=fake.api_key, base_url=srv.http_url + "/v1beta"), fake


@contextlib.asynccontextmanager
async def _fallback() -> AsyncIterator[tuple[Any, Any]]:
    down = FakeOpenAIChat(api_key="sk-down", replies=lambda body: Reply(status=500))
    async with running(down.app) as down_srv, _anthropic() as (anthropic, fake):
        primary = OpenAILLM(api_key=down.api_key, base_url=down_srv.http_url + "/v1")
        yield FallbackLLM([primary, anthropic]), fake
    assert down.requests, "the failing primary was never tried"


LLM_CASES: dict[str, LlmCase] = {
    "openai": LlmCase(_openai, "openai"),
    "openai_compatible": LlmCase(_compatible, "openai_compatible"),
    "anthropic": LlmCase(_anthropic, "anthropic"),
    "groq": LlmCase(_groq, "groq"),
    "cerebras": LlmCase(_cerebras, "cerebras"),
    "google": LlmCase(_google, "google"),
    "fallback": LlmCase(_fallback, "anthropic"),
}


@pytest.mark.parametrize("name", list(LLM_CASES))
async def test_llm_call_with_tool_round_trip(name: str) -> None:
    case = LLM_CASES[name]
    calls: list[str] = []

    @tool
    def opening_hours(day: str) -> dict[str, str]:
        """Opening hours for one day of the week.

        Args:
            day: The day, e.g. Monday.
        """
        calls.append(day)
        return {"day": day, "hours": "9-17"}

    usage = Usage()
    async with case.serve() as (llm, fake):
        async with call_harness(
            utterances=[LLM_UTTERANCE],
            ms_per_char=5,
            providers={"llm": llm},
            agent_kwargs={"tools": [opening_hours]},
            observers=[usage],
        ) as h:
            call = await run_call(h, turns=1)
        await llm.close()

    assert call.protocol_errors == []
    assert calls == ["Monday"]
    assert len(fake.requests) == 2  # the tool call, then the answer with the tool result
    assert "9-17" not in json.dumps(fake.requests[0]) and "9-17" in json.dumps(fake.requests[1])
    assert h.llm.requests == []  # the default LLM fake was not used
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": LLM_UTTERANCE},
        {"role": "assistant", "text": LLM_ANSWER},
    ]
    recorded = usage.of("llm")
    assert [(u.provider, u.input_tokens, u.output_tokens) for u in recorded] == [
        (case.provider, *tokens) for tokens in LLM_USAGE
    ]
