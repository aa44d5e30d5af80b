"""CerebrasLLM against the strict OpenAI chat fake behind a Cerebras gate (gzip, 400s, rate headers)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from typing import Any

import pytest

from getpatter.errors import (
    AuthenticationError,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.llm import cerebras as cerebras_mod
from getpatter.llm.base import TextDelta, ToolCallRequest, Usage
from getpatter.llm.cerebras import CEREBRAS_BASE_URL, CerebrasLLM, rate_limit_reset_s
from tests.fakes.openai_chat import FakeOpenAIChat, Reply, error_json
from tests.fakes.server import running

KEY = "csk-test-0123456789"
HELLO: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a phone agent."},
    {"role": "user", "content": "Hi there"},
]
LONG: list[dict[str, Any]] = [{"role": "system", "content": "Policy line. " * 400}, HELLO[1]]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
_CEREBRAS_REJECTS = (
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "parallel_tool_calls",
    "service_tier",
)


class CerebrasGate:
    """ASGI wrapper: decodes gzip request bodies like Cerebras, refuses its reported 400 fields, and puts
    Cerebras' ``x-ratelimit-*`` headers (``limit_headers``) on 429 answers."""

    def __init__(self, fake: FakeOpenAIChat, limit_headers: dict[str, str] | None = None) -> None:
        self.fake = fake
        self.limit_headers = limit_headers or {}
        self.encodings: list[str] = []
        self.wire_sizes: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        encoding = headers.get("content-encoding", "identity")
        self.encodings.append(encoding)
        self.wire_sizes.append(len(raw))
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding != "identity":
            await _json(
                send, 415, error_json(f"Unsupported Content-Encoding {encoding}", "invalid_request_error")
            )
            return
        body = json.loads(raw or b"{}")
        problem = next((k for k in _CEREBRAS_REJECTS if k in body), None)
        if problem:
            await _json(send, 400, error_json(f"Unsupported parameter: {problem}", "invalid_request_error"))
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send_with_limits(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 429:
                extra = [(k.encode(), v.encode()) for k, v in self.limit_headers.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        inner_headers = [
            (k, v) for k, v in scope["headers"] if k.lower() not in (b"content-encoding", b"content-length")
        ]
        await self.fake.app(dict(scope, headers=inner_headers), replay, send_with_limits)


async def _json(send: Any, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": data})


async def collect(
    llm: CerebrasLLM, messages: Sequence[dict[str, Any]] = HELLO, tools: Any = None
) -> list[Any]:
    return [ev async for ev in llm.stream(messages, tools)]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(cerebras_mod, "_sleep", fake_sleep)
    return waits


async def test_request_fields_and_gzip_only_for_large_bodies() -> None:
    fake = FakeOpenAIChat(api_key=KEY)
    gate = CerebrasGate(fake)
    async with running(gate) as srv:
        llm = CerebrasLLM(api_key=KEY, base_url=srv.http_url + "/v1", temperature=0.5, max_tokens=128, seed=3)
        await collect(llm, HELLO, [WEATHER])
        await collect(llm, LONG)
        plain = CerebrasLLM(api_key=KEY, base_url=srv.http_url + "/v1", gzip_compression=False)
        await collect(plain, LONG)
        await llm.close()
        await plain.close()
    first, second, third = fake.requests
    assert first == {
        "model": "gpt-oss-120b",
        "messages": HELLO,
        "tools": [{"type": "function", "function": WEATHER}],
        "temperature": 0.5,
        "max_completion_tokens": 128,
        "seed": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert second["messages"] == LONG == third["messages"]
    assert gate.encodings == ["identity", "gzip", "identity"]
    assert gate.wire_sizes[1] < gate.wire_sizes[2] // 10  # the repeated prompt compresses well
    assert fake.headers[-1]["authorization"] == f"Bearer {KEY}"


def test_unsupported_sampling_fields_are_not_accepted() -> None:
    with pytest.raises(TypeError):
        CerebrasLLM(api_key=KEY, frequency_penalty=0.5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        CerebrasLLM(api_key=KEY, parallel_tool_calls=True)  # type: ignore[call-arg]


async def test_text_then_usage_and_tool_round_trip() -> None:
    fake = FakeOpenAIChat(
        api_key=KEY,
        replies=[
            Reply(text="One sec.", tool_calls=[("get_weather", '{"city":"Lima"}')], usage=(20, 9)),
            "Warm.",
        ],
    )
    async with running(CerebrasGate(fake)) as srv:
        llm = CerebrasLLM(api_key=KEY, base_url=srv.http_url + "/v1")
        events = await collect(llm, HELLO, [WEATHER])
        (call,) = [e for e in events if isinstance(e, ToolCallRequest)]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "One sec."
        assert (call.name, call.arguments) == ("get_weather", '{"city":"Lima"}')
        assert events[-1] == Usage(input_tokens=20, output_tokens=9)
        function = {"name": call.name, "arguments": call.arguments}
        assistant = {"role": "assistant", "content": "One sec.", "tool_calls": [
            {"id": call.id, "type": "function", "function": function}]}  # fmt: skip
        tool_msg = {"role": "tool", "tool_call_id": call.id, "content": "24C"}
        follow = await collect(llm, [*HELLO, assistant, tool_msg], [WEATHER])
        await llm.close()
    assert "".join(e.text for e in follow if isinstance(e, TextDelta)) == "Warm."
    assert fake.last_messages()[-2:] == [assistant, tool_msg]


async def test_429_waits_for_the_token_bucket_reset_then_retries_once(sleeps: list[float]) -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(status=429), "Back again."])
    limits = {
        "x-ratelimit-remaining-tokens-minute": "0",
        "x-ratelimit-reset-tokens-minute": "1.5",
        "x-ratelimit-remaining-requests-day": "900",
        "x-ratelimit-reset-requests-day": "33011.4",
    }
    async with running(CerebrasGate(fake, limits)) as srv:
        llm = CerebrasLLM(api_key=KEY, base_url=srv.http_url + "/v1")
        events = await collect(llm)
        await llm.close()
    assert sleeps == [1.5]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Back again."
    assert len(fake.requests) == 2


async def test_429_on_the_daily_quota_is_not_waited_for(sleeps: list[float]) -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(status=429)])
    limits = {"x-ratelimit-remaining-requests-day": "0", "x-ratelimit-reset-requests-day": "33011.4"}
    async with running(CerebrasGate(fake, limits)) as srv:
        llm = CerebrasLLM(api_key=KEY, base_url=srv.http_url + "/v1")
        with pytest.raises(RateLimitError) as info:
            await collect(llm)
        await llm.close()
    assert info.value.retry_after == pytest.approx(33011.4)
    assert sleeps == [] and len(fake.requests) == 1


async def test_server_errors_are_retried_once_with_backoff(sleeps: list[float]) -> None:
    fake = FakeOpenAIChat(
        api_key=KEY, replies=[Reply(status=503), "Recovered.", Reply(status=500), Reply(status=502)]
    )
    async with running(CerebrasGate(fake)) as srv:
        llm = CerebrasLLM(api_key=KEY, base_url=srv.http_url + "/v1")
        events = await collect(llm)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Recovered."
        with pytest.raises(PatterConnectionError):
            await collect(llm)
        await llm.close()
    assert sleeps == [0.25, 0.25] and len(fake.requests) == 4


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=400), PatterError),
        (Reply(text="Hello there caller, one moment", drop_mid_stream=True), PatterConnectionError),
    ],
)
async def test_terminal_and_mid_stream_failures_are_not_retried(
    sleeps: list[float], reply: Reply, error: type[Exception]
) -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[reply, "never"])
    async with running(CerebrasGate(fake)) as srv:
        llm = CerebrasLLM(api_key=KEY, base_url=srv.http_url + "/v1")
        with pytest.raises(error) as info:
            await collect(llm)
        await llm.close()
    assert sleeps == [] and len(fake.requests) == 1
    if error is PatterError:
        assert not isinstance(info.value, PatterConnectionError)


async def test_wrong_key_is_authentication_error(sleeps: list[float]) -> None:
    fake = FakeOpenAIChat(api_key=KEY)
    async with running(CerebrasGate(fake)) as srv:
        llm = CerebrasLLM(api_key="csk-wrong-secret-key", base_url=srv.http_url + "/v1")
        with pytest.raises(AuthenticationError) as info:
            await collect(llm)
        await llm.close()
    assert "csk-wrong-secret-key" not in str(info.value) and sleeps == []


def test_rate_limit_reset_header_selection() -> None:
    assert rate_limit_reset_s({}) is None
    assert rate_limit_reset_s({"x-ratelimit-reset-tokens-minute": "11.38"}) == 11.38
    both = {"x-ratelimit-remaining-tokens-minute": "0", "x-ratelimit-reset-tokens-minute": "2",
            "x-ratelimit-remaining-requests-day": "0", "x-ratelimit-reset-requests-day": "50"}  # fmt: skip
    assert rate_limit_reset_s(both) == 50.0
    assert rate_limit_reset_s({"x-ratelimit-reset-tokens-minute": "soon"}) is None


def test_missing_key_names_parameter_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEREBRAS_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match=r"api_key.*CEREBRAS_API_KEY"):
        CerebrasLLM()
    monkeypatch.setenv("CEREBRAS_API_KEY", "csk-env-key")
    llm = cerebras_mod.LLM()
    assert (llm.provider_id, llm.model, llm.base_url) == ("cerebras", "gpt-oss-120b", CEREBRAS_BASE_URL)
    assert "csk-env-key" not in repr(llm)
