"""GroqLLM against the strict OpenAI chat fake, gated by what Groq additionally rejects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.llm import groq as groq_mod
from getpatter.llm.base import TextDelta, ToolCallRequest, Usage
from getpatter.llm.groq import GROQ_BASE_URL, GroqLLM
from tests.fakes.openai_chat import FakeOpenAIChat, Reply, error_json
from tests.fakes.server import running

KEY = "gsk_test_0123456789"
HELLO: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a phone agent."},
    {"role": "user", "content": "Hi there", "name": "caller"},
]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
_GROQ_REJECTS = ("logprobs", "logit_bias", "top_logprobs")


class GroqGate:
    """ASGI wrapper: serves the fake under Groq's ``/openai/v1`` prefix and refuses Groq's known 400s."""

    def __init__(self, fake: FakeOpenAIChat) -> None:
        self.fake = fake
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.paths.append(scope["path"])
        if not scope["path"].startswith("/openai/v1/"):
            await _json(send, 404, error_json("Unknown request URL", "invalid_request_error"))
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        body = json.loads(raw or b"{}")
        problem = next((k for k in _GROQ_REJECTS if k in body), None)
        if any("name" in m for m in body.get("messages", ())):
            problem = "messages[].name"
        if body.get("n", 1) != 1:
            problem = "n"
        if problem:
            await _json(
                send, 400, error_json(f"'{problem}' : property is unsupported", "invalid_request_error")
            )
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        inner = dict(scope, path=scope["path"].removeprefix("/openai"), raw_path=None)
        await self.fake.app(inner, replay, send)


async def _json(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": data})


async def collect(llm: GroqLLM, messages: Sequence[dict[str, Any]] = HELLO, tools: Any = None) -> list[Any]:
    return [ev async for ev in llm.stream(messages, tools)]


async def test_request_on_the_groq_path_with_fields_and_name_dropped() -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=["Hello!"])
    gate = GroqGate(fake)
    async with running(gate) as srv:
        llm = GroqLLM(api_key=KEY, base_url=srv.http_url + "/openai/v1", temperature=0.2, max_tokens=64)
        await collect(llm, HELLO, [WEATHER])
        await llm.close()
    assert gate.paths == ["/openai/v1/chat/completions"]
    body = fake.last_request()
    assert body["model"] == "llama-3.3-70b-versatile"
    assert body["messages"] == [HELLO[0], {"role": "user", "content": "Hi there"}]
    assert body["tools"] == [{"type": "function", "function": WEATHER}]
    assert body["temperature"] == 0.2 and body["max_completion_tokens"] == 64
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert fake.headers[-1]["authorization"] == f"Bearer {KEY}"
    assert llm.provider_id == "groq" and GROQ_BASE_URL == "https://api.groq.com/openai/v1"


async def test_text_streams_then_usage() -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(text="Sure, one moment please.", usage=(30, 6))])
    async with running(GroqGate(fake)) as srv:
        llm = GroqLLM(api_key=KEY, base_url=srv.http_url + "/openai/v1")
        events = await collect(llm)
        await llm.close()
    assert len([e for e in events if isinstance(e, TextDelta)]) > 1
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Sure, one moment please."
    assert events[-1] == Usage(input_tokens=30, output_tokens=6)


async def test_tool_call_round_trip() -> None:
    fake = FakeOpenAIChat(
        api_key=KEY, replies=[Reply(tool_calls=[("get_weather", '{"city":"Oslo"}')]), "Cold."]
    )
    async with running(GroqGate(fake)) as srv:
        llm = GroqLLM(api_key=KEY, base_url=srv.http_url + "/openai/v1")
        events = await collect(llm, HELLO, [WEATHER])
        (call,) = [e for e in events if isinstance(e, ToolCallRequest)]
        assert (call.name, call.arguments) == ("get_weather", '{"city":"Oslo"}')
        function = {"name": call.name, "arguments": call.arguments}
        assistant = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call.id, "type": "function", "function": function}],
        }
        tool_msg = {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": -3}'}
        follow = await collect(llm, [*HELLO, assistant, tool_msg], [WEATHER])
        await llm.close()
    assert "".join(e.text for e in follow if isinstance(e, TextDelta)) == "Cold."
    assert fake.last_messages()[-2:] == [assistant, tool_msg]


@pytest.mark.parametrize(
    ("reply", "error"),
    [(Reply(status=500), PatterConnectionError), (Reply(status=429, retry_after=2), RateLimitError)],
)
async def test_errors_map(reply: Reply, error: type[Exception]) -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[reply])
    async with running(GroqGate(fake)) as srv:
        llm = GroqLLM(api_key=KEY, base_url=srv.http_url + "/openai/v1")
        with pytest.raises(error) as info:
            await collect(llm)
        await llm.close()
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after == 2.0


async def test_wrong_key_is_authentication_error() -> None:
    fake = FakeOpenAIChat(api_key=KEY)
    async with running(GroqGate(fake)) as srv:
        llm = GroqLLM(api_key="gsk_wrong_secret_value", base_url=srv.http_url + "/openai/v1")
        with pytest.raises(AuthenticationError) as info:
            await collect(llm)
        await llm.close()
    assert "gsk_wrong_secret_value" not in str(info.value)


def test_missing_key_names_parameter_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match=r"api_key.*GROQ_API_KEY"):
        GroqLLM()
    monkeypatch.setenv("GROQ_API_KEY", "gsk_env_key")
    llm = groq_mod.LLM()
    assert llm.base_url == GROQ_BASE_URL and llm.model == "llama-3.3-70b-versatile"
    assert "gsk_env_key" not in repr(llm)
