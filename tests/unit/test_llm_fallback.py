"""FallbackLLM across two real clients and two fake servers (OpenAI fake failing, Anthropic answering)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.llm.anthropic import AnthropicLLM
from getpatter.llm.base import TextDelta, ToolCallRequest, Usage
from getpatter.llm.fallback import (
    AllProvidersFailedError,
    FallbackLLM,
    FallbackLLMProvider,
    PartialStreamError,
)
from getpatter.llm.openai import OpenAILLM
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.anthropic import Reply as AReply
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.server import running

OKEY, AKEY = "sk-openai-test", "sk-ant-test"
HELLO: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a phone agent."},
    {"role": "user", "content": "Hi there"},
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def pair(
    primary: list[Reply | str], secondary: list[AReply | str], **kwargs: Any
) -> AsyncIterator[tuple[FallbackLLM, FakeOpenAIChat, FakeAnthropic, OpenAILLM, AnthropicLLM]]:
    ofake, afake = (
        FakeOpenAIChat(api_key=OKEY, replies=primary),
        FakeAnthropic(api_key=AKEY, replies=secondary),
    )
    async with running(ofake.app) as osrv, running(afake.app) as asrv:
        first = OpenAILLM(api_key=OKEY, base_url=osrv.http_url + "/v1")
        second = AnthropicLLM(api_key=AKEY, base_url=asrv.http_url)
        llm = FallbackLLM([first, second], **kwargs)
        try:
            yield llm, ofake, afake, first, second
        finally:
            await llm.close()


async def collect(llm: FallbackLLM, tools: Any = None) -> list[Any]:
    return [ev async for ev in llm.stream(HELLO, tools)]


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def _role_chunk() -> str:
    choice = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [choice],
    }
    return f"data: {json.dumps(chunk)}\n\n"


async def test_primary_answers_when_healthy() -> None:
    async with pair([Reply(text="From OpenAI.", usage=(5, 3))], []) as (llm, _, afake, first, _):
        assert (llm.provider_id, llm.model) == ("openai", "gpt-4o-mini")
        events = await collect(llm)
        assert text_of(events) == "From OpenAI." and events[-1] == Usage(5, 3)
        assert llm.last_provider is first and afake.requests == []


async def test_server_errors_are_retried_then_the_next_provider_answers() -> None:
    async with pair([Reply(status=500), Reply(status=503)], ["From Claude."]) as (
        llm,
        ofake,
        afake,
        _,
        second,
    ):
        events = await collect(llm)
        assert text_of(events) == "From Claude."
        assert len(ofake.requests) == 2 and len(afake.requests) == 1  # 1 try + max_retry_per_provider=1
        assert llm.last_provider is second
        assert (llm.provider_id, llm.model) == ("anthropic", "claude-haiku-4-5-20251001")
        assert isinstance(events[-1], Usage)


async def test_a_drop_before_the_first_token_fails_over() -> None:
    dropped = Reply(raw_events=[_role_chunk(), _role_chunk()], drop_mid_stream=True)
    async with pair([dropped], ["Hello from the backup."], max_retry_per_provider=0) as (
        llm,
        ofake,
        afake,
        *_,
    ):
        assert text_of(await collect(llm)) == "Hello from the backup."
        assert len(ofake.requests) == 1 and len(afake.requests) == 1


async def test_a_failure_after_the_first_token_is_a_partial_stream_error() -> None:
    partial = Reply(text="Sure, the weather in Rome is lovely today", drop_mid_stream=True)
    async with pair([partial], ["never"]) as (llm, _, afake, first, _):
        seen: list[Any] = []
        with pytest.raises(PartialStreamError) as info:
            async for event in llm.stream(HELLO):
                seen.append(event)
        assert text_of(seen).startswith("Sure")
        assert info.value.provider_id == "openai" and isinstance(info.value.__cause__, PatterConnectionError)
        assert afake.requests == [] and llm.last_provider is first


async def test_rate_limit_moves_on_without_retrying_the_limited_provider() -> None:
    async with pair([Reply(status=429, retry_after=20)], ["Backup here."]) as (llm, ofake, afake, *_):
        assert text_of(await collect(llm)) == "Backup here."
        assert len(ofake.requests) == 1 and len(afake.requests) == 1


async def test_a_failed_provider_is_skipped_until_the_recovery_interval_passed() -> None:
    clock = Clock()
    primary: list[Reply | str] = [Reply(status=500), "Primary is back."]
    secondary: list[AReply | str] = ["Backup one.", "Backup two."]
    async with pair(primary, secondary, max_retry_per_provider=0, recovery_interval_s=30, clock=clock) as (
        llm, ofake, _, first, second,
    ):  # fmt: skip
        assert text_of(await collect(llm)) == "Backup one."
        assert llm.is_down(first) and not llm.is_down(second)
        clock.now += 29.0
        assert text_of(await collect(llm)) == "Backup two."
        assert len(ofake.requests) == 1  # the primary was not even asked
        clock.now += 1.0
        assert text_of(await collect(llm)) == "Primary is back."
        assert len(ofake.requests) == 2 and llm.last_provider is first and not llm.is_down(first)
        assert llm.provider_id == "openai"


async def test_all_providers_failing_raises_all_providers_failed() -> None:
    async with pair([Reply(status=502)], [AReply(status=529)], max_retry_per_provider=0) as (llm, *_):
        with pytest.raises(AllProvidersFailedError) as info:
            await collect(llm)
    assert [pid for pid, _ in info.value.errors] == ["openai", "anthropic"]
    assert all(isinstance(e, PatterConnectionError) for _, e in info.value.errors)
    assert "502" in str(info.value) and "529" in str(info.value)
    assert OKEY not in str(info.value) and AKEY not in str(info.value)


async def test_non_retryable_errors_are_raised_without_failover() -> None:
    async with pair([Reply(status=401)], ["never"]) as (llm, ofake, afake, *_):
        with pytest.raises(AuthenticationError):
            await collect(llm)
        assert afake.requests == [] and len(ofake.requests) == 1


async def test_tool_calls_pass_through_from_the_backup() -> None:
    tool = {
        "name": "get_time",
        "description": "Local time.",
        "parameters": {"type": "object", "properties": {}},
    }
    reply = AReply(tool_calls=[("get_time", '{"tz": "UTC"}')])
    async with pair([Reply(status=500)], [reply], max_retry_per_provider=0) as (llm, *_):
        calls = [e for e in await collect(llm, [tool]) if isinstance(e, ToolCallRequest)]
    assert [(c.name, c.arguments) for c in calls] == [("get_time", '{"tz": "UTC"}')]


async def test_cancelling_the_consumer_closes_the_active_stream() -> None:
    async with pair([Reply(text="x" * 80, chunk_delay_s=0.05)], []) as (llm, ofake, *_):
        async with contextlib.aclosing(llm.stream(HELLO)) as stream:
            assert isinstance(await anext(stream), TextDelta)
        await ofake.wait_aborted()


def test_configuration_errors() -> None:
    with pytest.raises(PatterConfigError, match="providers"):
        FallbackLLM([])
    with pytest.raises(PatterConfigError, match="LLM instances"):
        FallbackLLM(["openai"])  # type: ignore[list-item]
    llm = AnthropicLLM(api_key=AKEY)
    with pytest.raises(PatterConfigError, match="max_retry_per_provider"):
        FallbackLLM([llm], max_retry_per_provider=-1)
    assert FallbackLLMProvider is FallbackLLM
    assert AKEY not in repr(FallbackLLM([llm])) and issubclass(RateLimitError, PatterConnectionError)
