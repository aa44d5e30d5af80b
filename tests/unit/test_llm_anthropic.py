"""AnthropicLLM against the strict fake Messages API: conversion, streaming, tools, caching, errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from getpatter.errors import (
    AuthenticationError,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.llm import anthropic as anthropic_mod
from getpatter.llm.anthropic import CALL_START_TEXT, AnthropicLLM
from getpatter.llm.base import LLMEvent, TextDelta, ToolCallRequest, Usage
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.server import running

KEY = "sk-ant-test-0123456789"
HELLO: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a phone agent."},
    {"role": "user", "content": "Hi there"},
]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
EPHEMERAL = {"type": "ephemeral"}
TIME = {"name": "get_time", "description": "Local time.", "parameters": {"type": "object", "properties": {}}}


async def collect(
    llm: AnthropicLLM, messages: Sequence[dict[str, Any]] = HELLO, tools: Any = None
) -> list[Any]:
    return [ev async for ev in llm.stream(messages, tools)]


def text_of(events: list[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_request_fields_headers_and_prompt_caching_on_the_wire() -> None:
    fake = FakeAnthropic(api_key=KEY, replies=["ok"])
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url, max_tokens=300, temperature=0.4)
        await collect(llm, HELLO, [WEATHER, TIME])
        await llm.close()
    body = fake.last_request()
    assert body == {
        "model": "claude-haiku-4-5-20251001",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "You are a phone agent.", "cache_control": EPHEMERAL}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}],
        "tools": [
            {"name": "get_weather", "description": "Current weather for a city.",
             "input_schema": WEATHER["parameters"]},
            {"name": "get_time", "description": "Local time.", "input_schema": TIME["parameters"],
             "cache_control": EPHEMERAL},
        ],
        "temperature": 0.4,
        "stream": True,
    }  # fmt: skip
    headers = fake.headers[-1]
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers


async def test_without_prompt_caching_no_block_is_marked_and_defaults_are_minimal() -> None:
    fake = FakeAnthropic(api_key=KEY)
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url, prompt_caching=False)
        await collect(llm, HELLO, [WEATHER])
        await collect(llm, [{"role": "user", "content": "no system, no tools"}])
        await llm.close()
    first, second = fake.requests
    assert "cache_control" not in json.dumps(first)
    assert first["system"] == [{"type": "text", "text": "You are a phone agent."}]
    assert set(second) == {"model", "max_tokens", "messages", "stream"}
    assert second["max_tokens"] == 1024


async def test_text_streams_as_deltas_then_usage_with_cache_counts() -> None:
    answer = "Hello! How can I help you today?"
    fake = FakeAnthropic(
        api_key=KEY, replies=[Reply(text=answer, usage=(472, 87), cache_read=2048, cache_write=5)]
    )
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url)
        events = await collect(llm)
        await llm.close()
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        answer[i : i + 5] for i in range(0, 32, 5)
    ]
    assert text_of(events) == answer
    assert events[-1] == Usage(
        input_tokens=472, output_tokens=87, cache_read_tokens=2048, cache_write_tokens=5
    )
    assert not any(isinstance(e, ToolCallRequest) for e in events)


async def test_tool_call_round_trip_converts_history_in_the_next_request() -> None:
    weather_args = '{"city": "Rome", "unit": "celsius"}'
    fake = FakeAnthropic(
        api_key=KEY,
        replies=[
            Reply(text="Let me check.", tool_calls=[("get_weather", weather_args), ("get_time", "")]),
            "It is sunny in Rome.",
        ],
    )
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url)
        events = await collect(llm, HELLO, [WEATHER, TIME])
        calls = [e for e in events if isinstance(e, ToolCallRequest)]
        assert [(c.name, c.arguments) for c in calls] == [("get_weather", weather_args), ("get_time", "{}")]
        assert all(c.id.startswith("toolu_") for c in calls) and calls[0].id != calls[1].id
        kinds = [type(e).__name__ for e in events]
        assert kinds[0] == "TextDelta" and kinds[-1] == "Usage"

        history: list[dict[str, Any]] = [
            *HELLO,
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp_c": 21}'},
            {"role": "tool", "tool_call_id": calls[1].id, "content": "14:05"},
        ]  # fmt: skip
        follow = await collect(llm, history, [WEATHER, TIME])
        await llm.close()
    assert text_of(follow) == "It is sunny in Rome."
    assert fake.last_request()["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi there"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": calls[0].id, "name": "get_weather",
             "input": {"city": "Rome", "unit": "celsius"}},
            {"type": "tool_use", "id": calls[1].id, "name": "get_time", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": calls[0].id, "content": '{"temp_c": 21}'},
            {"type": "tool_result", "tool_use_id": calls[1].id, "content": "14:05"}]},
    ]  # fmt: skip


async def test_greeting_first_history_and_same_role_turns_are_normalised() -> None:
    fake = FakeAnthropic(api_key=KEY)
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hello, this is Acme."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "[DTMF: 1]"}]},
        {"role": "system", "content": "Caller pressed 1."},
        {"role": "assistant", "content": None},
    ]
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url)
        await collect(llm, history)
        await llm.close()
    body = fake.last_request()
    assert [b["text"] for b in body["system"]] == ["Be brief.", "Caller pressed 1."]
    assert (
        body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        and "cache_control" not in body["system"][0]
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": CALL_START_TEXT}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello, this is Acme."}]},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "[DTMF: 1]"}]},
    ]


async def test_wrong_key_is_authentication_error_and_key_never_leaks() -> None:
    fake = FakeAnthropic(api_key=KEY)
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key="sk-ant-wrong-secret", base_url=srv.http_url)
        with pytest.raises(AuthenticationError) as info:
            await collect(llm)
        await llm.close()
    assert "401" in str(info.value) and "sk-ant-wrong-secret" not in str(info.value)
    assert "sk-ant-wrong-secret" not in repr(llm)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=529), PatterConnectionError),
        (Reply(status=500), PatterConnectionError),
        (Reply(status=403), AuthenticationError),
        (Reply(status=400), PatterError),
        (Reply(text="Hello there, caller", stream_error="overloaded_error"), PatterConnectionError),
        (Reply(text="Hello there, caller", drop_mid_stream=True), PatterConnectionError),
    ],
)
async def test_errors_map_to_the_hierarchy(reply: Reply, error: type[Exception]) -> None:
    fake = FakeAnthropic(api_key=KEY, replies=[reply])
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url)
        with pytest.raises(error) as info:
            await collect(llm)
        await llm.close()
    if error is PatterError:
        assert not isinstance(info.value, PatterConnectionError)


async def test_rate_limit_carries_retry_after() -> None:
    fake = FakeAnthropic(api_key=KEY, replies=[Reply(status=429, retry_after=7)])
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url)
        with pytest.raises(RateLimitError) as info:
            await collect(llm)
        await llm.close()
    assert info.value.retry_after == 7.0


async def test_connection_refused_is_connection_error() -> None:
    async with running(FakeAnthropic().app) as srv:
        url = srv.http_url
    llm = AnthropicLLM(api_key=KEY, base_url=url)
    with pytest.raises(PatterConnectionError):
        await collect(llm)
    await llm.close()


async def test_cancelling_the_consumer_closes_the_http_stream() -> None:
    fake = FakeAnthropic(api_key=KEY, replies=[Reply(text="x" * 60, chunk_delay_s=0.05)])
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url)
        async with contextlib.aclosing(llm.stream(HELLO)) as stream:
            assert await anext(stream) == TextDelta("xxxxx")
        await fake.streams.wait_aborted()
        await llm.close()


async def test_one_pooled_connection_is_reused_across_turns() -> None:
    fake = FakeAnthropic(api_key=KEY, replies=["one", "two", "three"])
    async with running(fake.app) as srv:
        llm = AnthropicLLM(api_key=KEY, base_url=srv.http_url)
        for _ in range(3):
            await collect(llm)
        await llm.close()
    assert len(fake.client_ports) == 3 and len(set(fake.client_ports)) == 1


def test_missing_key_names_parameter_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match=r"api_key.*ANTHROPIC_API_KEY"):
        AnthropicLLM()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    llm = anthropic_mod.LLM()
    assert llm._api_key == "sk-ant-env" and llm.provider_id == "anthropic"
    assert "sk-ant-env" not in repr(llm)


async def test_fake_rejects_what_the_real_api_rejects() -> None:
    fake = FakeAnthropic(api_key=KEY)
    good = {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    bad_bodies = [
        {k: v for k, v in good.items() if k != "max_tokens"},
        {**good, "messages": [{"role": "system", "content": "x"}, *good["messages"]]},
        {**good, "messages": [*good["messages"], {"role": "user", "content": "again"}]},
        {**good, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}]}]},
        {**good, "messages": [*good["messages"], {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
            {"role": "user", "content": "forgot the result"}]},
        {**good, "tools": [{"name": "f", "parameters": {"type": "object"}}]},
        {**good, "bogus": 1},
    ]  # fmt: skip
    async with running(fake.app) as srv, httpx.AsyncClient() as client:
        url = srv.http_url + "/v1/messages"
        no_version = {k: v for k, v in headers.items() if k != "anthropic-version"}
        assert (await client.post(url, json=good, headers=no_version)).status_code == 400
        bearer = {
            **no_version,
            "anthropic-version": "2023-06-01",
            "x-api-key": "",
            "authorization": f"Bearer {KEY}",
        }
        assert (await client.post(url, json=good, headers=bearer)).status_code == 401
        for body in bad_bodies:
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 400, body
            assert response.json()["error"]["type"] == "invalid_request_error"
        assert (await client.post(url, json=good, headers=headers)).status_code == 200
    assert len(fake.rejected) == len(bad_bodies) + 2
