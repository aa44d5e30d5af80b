"""OpenAILLM against the strict fake Chat Completions server (the SSE parser and the shared error helpers
are in ``test_llm_sse_and_errors.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.llm import openai as openai_mod
from getpatter.llm.base import LLMEvent, TextDelta, ToolCallRequest, Usage
from getpatter.llm.openai import OpenAICompatibleLLM, OpenAILLM
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.server import Running, running

KEY = "sk-test-0123456789abcdef"
HELLO: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a phone agent."},
    {"role": "user", "content": "Hi there"},
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME_TOOL = {
    "name": "get_time",
    "description": "Local time.",
    "parameters": {"type": "object", "properties": {}},
}


@contextlib.asynccontextmanager
async def serve(fake: FakeOpenAIChat) -> AsyncIterator[Running]:
    async with running(fake.app) as srv:
        yield srv


def make_llm(srv: Running, **kwargs: Any) -> OpenAILLM:
    return OpenAILLM(api_key=kwargs.pop("api_key", KEY), base_url=srv.http_url + "/v1", **kwargs)


async def collect(
    llm: OpenAILLM, messages: Sequence[dict[str, Any]] = HELLO, tools: Any = None
) -> list[LLMEvent]:
    return [ev async for ev in llm.stream(messages, tools)]


def text_of(events: list[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# ---------------------------------------------------------------------------------------------- request
async def test_request_body_carries_every_set_field_on_the_wire() -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=["ok"])
    async with serve(fake) as srv:
        llm = make_llm(
            srv,
            model="gpt-4.1-mini",
            temperature=0.3,
            max_tokens=256,
            top_p=0.9,
            seed=7,
            stop=("END", "STOP"),
            tool_choice="auto",
            parallel_tool_calls=True,
            response_format={"type": "text"},
            frequency_penalty=0.1,
            presence_penalty=-0.2,
            user_agent="getpatter-test/1",
        )
        await collect(llm, HELLO, [WEATHER_TOOL])
        await llm.close()
    body = fake.last_request()
    assert body["model"] == "gpt-4.1-mini"
    assert body["messages"] == HELLO
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": WEATHER_TOOL["parameters"],
            },
        }
    ]
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert body["temperature"] == 0.3
    assert body["max_completion_tokens"] == 256
    assert "max_tokens" not in body
    assert body["top_p"] == 0.9
    assert body["seed"] == 7
    assert body["stop"] == ["END", "STOP"]
    assert body["response_format"] == {"type": "text"}
    assert body["frequency_penalty"] == 0.1
    assert body["presence_penalty"] == -0.2
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert len(body) == 15
    headers = fake.headers[-1]
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "getpatter-test/1"


async def test_only_set_fields_are_sent_and_tool_options_need_tools() -> None:
    fake = FakeOpenAIChat(api_key=KEY)
    async with serve(fake) as srv:
        llm = make_llm(srv, tool_choice="required", parallel_tool_calls=False)
        await collect(llm)  # no tools: OpenAI would answer 400 to tool_choice, so it is left out
        await llm.close()
    assert set(fake.last_request()) == {"model", "messages", "stream", "stream_options"}
    assert fake.last_request()["model"] == "gpt-4o-mini"


# ---------------------------------------------------------------------------------------------- streaming
async def test_text_streams_as_several_deltas_then_usage() -> None:
    answer = "Hello! How can I help you today?"
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(text=answer, usage=(42, 9))])
    async with serve(fake) as srv:
        llm = make_llm(srv)
        events = await collect(llm)
        await llm.close()
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert [d.text for d in deltas] == [answer[i : i + 4] for i in range(0, len(answer), 4)]  # fake: 4 chars
    assert text_of(events) == answer
    assert events[-1] == Usage(input_tokens=42, output_tokens=9)
    assert not any(isinstance(e, ToolCallRequest) for e in events)


async def test_first_delta_arrives_while_the_server_is_still_streaming() -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(text="x" * 40, chunk_delay_s=0.05)])
    async with serve(fake) as srv:
        llm = make_llm(srv)
        async with contextlib.aclosing(llm.stream(HELLO)) as stream:
            first = await anext(stream)
            assert first == TextDelta("xxxx")
            assert fake.streams_completed == 0
        await fake.wait_aborted()  # closing the iterator early closed the HTTP stream
        await llm.close()


async def test_two_parallel_tool_calls_are_assembled_from_chunked_arguments() -> None:
    weather_args = '{"city": "Rome", "unit": "celsius", "detail": true}'
    time_args = '{"tz": "Europe/Rome"}'
    fake = FakeOpenAIChat(
        api_key=KEY,
        replies=[
            Reply(text="Let me check.", tool_calls=[("get_weather", weather_args), ("get_time", time_args)]),
            "It is sunny in Rome.",
        ],
    )
    async with serve(fake) as srv:
        llm = make_llm(srv)
        events = await collect(llm, HELLO, [WEATHER_TOOL, TIME_TOOL])
        calls = [e for e in events if isinstance(e, ToolCallRequest)]
        assert [(c.name, c.arguments) for c in calls] == [
            ("get_weather", weather_args),
            ("get_time", time_args),
        ]
        assert calls[0].id != calls[1].id and all(c.id.startswith("call_") for c in calls)
        assert text_of(events) == "Let me check."
        # order contract: text first, then the calls, then usage
        kinds = [type(e).__name__ for e in events]
        assert kinds.index("ToolCallRequest") > max(i for i, k in enumerate(kinds) if k == "TextDelta")
        assert kinds[-1] == "Usage"

        # the follow-up request with the results passes the strict fake's tool-message validation
        follow_up: list[dict[str, Any]] = [
            *HELLO,
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in calls
                ],
            },
            *({"role": "tool", "tool_call_id": c.id, "content": '{"ok": true}'} for c in calls),
        ]
        events = await collect(llm, follow_up, [WEATHER_TOOL, TIME_TOOL])
        await llm.close()
    assert text_of(events) == "It is sunny in Rome."
    assert fake.last_messages()[-1] == {
        "role": "tool",
        "tool_call_id": calls[1].id,
        "content": '{"ok": true}',
    }


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    obj = {"id": "c1", "object": "chat.completion.chunk", "model": "m", **extra}
    obj["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return f"data: {json.dumps(obj)}\n\n"


async def test_interleaved_fragments_split_names_empty_args_and_missing_done() -> None:
    raw = [
        ": keep-alive comment\n\n",
        _chunk({"role": "assistant", "content": None}),
        _chunk(
            {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_"}}]}
        ),
        _chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_b", "type": "function", "function": {"name": "hang_up"}}
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": '{"ci'}}]}),
        "data: this is not json\n\n",  # garbage is skipped, not fatal
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
        _chunk({}, "tool_calls"),
        # no usage and no [DONE]: finish_reason already said the answer is complete
    ]
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(raw_events=raw)])
    async with serve(fake) as srv:
        llm = make_llm(srv)
        events = await collect(llm, HELLO, [WEATHER_TOOL])
        await llm.close()
    assert events == [
        ToolCallRequest("call_a", "get_weather", '{"city": "Oslo"}'),
        ToolCallRequest("call_b", "hang_up", "{}"),
    ]


async def test_usage_splits_cached_prompt_tokens_and_reads_groq_x_groq() -> None:
    groq_usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14, "queue_time": 0.01}
    raw = [
        _chunk({"content": "Hi"}),
        _chunk({}, "stop", x_groq={"id": "req_1", "usage": groq_usage}),
        "data: [DONE]\n\n",
    ]
    fake = FakeOpenAIChat(
        api_key=KEY, replies=[Reply(text="ok", usage=(1200, 30), cached_tokens=1024), Reply(raw_events=raw)]
    )
    async with serve(fake) as srv:
        llm = make_llm(srv)
        first = await collect(llm)
        second = await collect(llm)
        await llm.close()
    assert first[-1] == Usage(input_tokens=176, output_tokens=30, cache_read_tokens=1024)
    assert second == [TextDelta("Hi"), Usage(input_tokens=11, output_tokens=3)]


# ---------------------------------------------------------------------------------------------- errors
async def test_wrong_key_is_authentication_error_without_the_key_in_it() -> None:
    wrong = "sk-wrong-key-abcdefghijklmnop"
    fake = FakeOpenAIChat(api_key=KEY)
    async with serve(fake) as srv:
        llm = make_llm(srv, api_key=wrong)
        with pytest.raises(AuthenticationError) as info:
            await collect(llm)
        await llm.close()
    assert info.value.code is ErrorCode.AUTH
    assert "401" in str(info.value) and "Incorrect API key" in str(info.value)
    assert wrong not in str(info.value) and wrong not in repr(llm)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("reply", "exc_type", "fragment"),
    [
        (
            Reply(status=403, error_message="Project not allowed"),
            AuthenticationError,
            "403: Project not allowed",
        ),
        (Reply(status=500), PatterConnectionError, "500: The server had an error"),
        (Reply(status=503, error_message="Overloaded"), PatterConnectionError, "503: Overloaded"),
        (Reply(status=404, error_message="The model `x` does not exist"), PatterError, "404"),
    ],
)
async def test_status_codes_map_to_the_error_hierarchy(
    reply: Reply, exc_type: type[Exception], fragment: str
) -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[reply])
    async with serve(fake) as srv:
        llm = make_llm(srv)
        with pytest.raises(exc_type) as info:
            await collect(llm)
        await llm.close()
    assert fragment in str(info.value) and str(info.value).startswith("openai returned HTTP")
    if reply.status == 404:  # a request the vendor will never accept is not a (retryable) connection error
        assert not isinstance(info.value, PatterConnectionError)
        assert info.value.code is ErrorCode.PROVIDER_ERROR  # type: ignore[attr-defined]


async def test_rate_limit_carries_retry_after() -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(status=429, retry_after=7), Reply(status=429)])
    async with serve(fake) as srv:
        llm = make_llm(srv)
        with pytest.raises(RateLimitError) as info:
            await collect(llm)
        assert info.value.retry_after == 7.0
        assert "Rate limit reached" in str(info.value)
        with pytest.raises(RateLimitError) as info:
            await collect(llm)
        assert info.value.retry_after is None
        await llm.close()


async def test_connection_refused_is_connection_error() -> None:
    async with running(FakeOpenAIChat().app) as srv:
        url = srv.http_url
    llm = OpenAILLM(api_key=KEY, base_url=url + "/v1")  # the server is gone
    with pytest.raises(PatterConnectionError) as info:
        await collect(llm)
    await llm.close()
    assert "connection failed" in str(info.value) and KEY not in str(info.value)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="This answer will be cut off halfway through.", drop_mid_stream=True),
        Reply(
            raw_events=[_chunk({"content": "Hel"}), 'data: {"error": {"message": "Upstream overloaded"}}\n\n']
        ),
        Reply(raw_events=[_chunk({"content": "Hel"})]),  # body ends without finish_reason or [DONE]
    ],
    ids=["drop", "in-stream-error", "truncated"],
)
async def test_broken_streams_raise_connection_error_after_partial_text(reply: Reply) -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[reply])
    seen: list[LLMEvent] = []
    async with serve(fake) as srv:
        llm = make_llm(srv)
        with pytest.raises(PatterConnectionError) as info:
            async for ev in llm.stream(HELLO):
                seen.append(ev)
        await llm.close()
    assert seen and all(isinstance(e, TextDelta) for e in seen)
    if reply.raw_events and len(reply.raw_events) == 2:
        assert "Upstream overloaded" in str(info.value)


async def test_cancelling_the_consumer_closes_the_http_stream() -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=[Reply(text="word " * 50, chunk_delay_s=0.05)])
    got_first = asyncio.Event()

    async def consume(llm: OpenAILLM) -> None:
        async for _ in llm.stream(HELLO):
            got_first.set()

    async with serve(fake) as srv:
        llm = make_llm(srv)
        task = asyncio.create_task(consume(llm))
        await got_first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await fake.wait_aborted()
        await llm.close()
    assert fake.streams_aborted == 1 and fake.streams_completed == 0


# ---------------------------------------------------------------------------------------------- config
def test_missing_key_names_parameter_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PatterConfigError) as info:
        OpenAILLM()
    assert "api_key" in str(info.value) and "OPENAI_API_KEY" in str(info.value)
    assert OpenAILLM.provider_id == "openai" and openai_mod.LLM is OpenAILLM


async def test_key_falls_back_to_env_and_is_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    fake = FakeOpenAIChat(api_key=KEY, replies=["from env"])
    async with serve(fake) as srv:
        llm = OpenAILLM(base_url=srv.http_url + "/v1/")  # trailing slash: joined with exactly one "/"
        assert text_of(await collect(llm)) == "from env"
        await llm.close()
    assert KEY not in repr(llm) and "gpt-4o-mini" in repr(llm)


async def test_one_pooled_connection_is_reused_across_turns() -> None:
    fake = FakeOpenAIChat(api_key=KEY, replies=["one", "two", "three"])
    async with serve(fake) as srv:
        llm = make_llm(srv)
        assert text_of(await collect(llm)) == "one"
        client = llm._client
        assert text_of(await collect(llm)) == "two"
        assert llm._client is client
        assert fake.client_ports[0] == fake.client_ports[1]  # same TCP connection, no new handshake
        await llm.close()
        assert llm._client is None and client is not None and client.is_closed
        assert text_of(await collect(llm)) == "three"  # a closed provider reopens lazily
        await llm.close()


# ---------------------------------------------------------------------------------------------- compatible
async def test_compatible_llm_without_key_sends_no_authorization(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # must not leak into a third-party server
    fake = FakeOpenAIChat(api_key=KEY)
    async with serve(fake) as srv:
        llm = OpenAICompatibleLLM(srv.http_url + "/v1", model="llama3.1")
        with pytest.raises(AuthenticationError):
            await collect(llm)
        await llm.close()
    assert fake.rejected[-1][0] == 401 and "didn't provide an API key" in fake.rejected[-1][1]


async def test_compatible_llm_env_key_provider_id_and_wire_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYVENDOR_API_KEY", KEY)
    fake = FakeOpenAIChat(api_key=KEY, replies=["hey"])
    async with serve(fake) as srv:
        llm = OpenAICompatibleLLM(
            srv.http_url + "/v1",
            model="llama-3.3-70b",
            api_key_env="MYVENDOR_API_KEY",
            provider_id="myvendor",
            max_tokens=64,
            max_tokens_param="max_tokens",
            extra_body={"service_tier": "flex"},
        )
        assert text_of(await collect(llm)) == "hey"
        await llm.close()
    assert llm.provider_id == "myvendor" and OpenAICompatibleLLM.provider_id == "openai_compatible"
    body = fake.last_request()
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    assert body["service_tier"] == "flex" and body["model"] == "llama-3.3-70b"


def test_compatible_llm_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MYVENDOR_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="MYVENDOR_API_KEY"):
        OpenAICompatibleLLM("http://127.0.0.1:1/v1", model="m", api_key_env="MYVENDOR_API_KEY")
    with pytest.raises(PatterConfigError, match="model"):
        OpenAICompatibleLLM("http://127.0.0.1:1/v1")


# ---------------------------------------------------------------------------------------------- event loops
def test_a_provider_survives_being_used_from_a_second_event_loop() -> None:
    """Sequential ``asyncio.run`` calls (scripts, tests) each get a pool bound to their own loop."""
    llm = OpenAILLM(api_key=KEY)

    async def one_turn(close: bool) -> str:
        fake = FakeOpenAIChat(api_key=KEY, replies=["hello"])
        async with serve(fake) as srv:
            llm.base_url = srv.http_url + "/v1"
            text = text_of(await collect(llm))
            if close:
                await llm.close()
        return text

    assert asyncio.run(one_turn(close=False)) == "hello"  # the pool stays bound to a loop that is now gone
    assert asyncio.run(one_turn(close=True)) == "hello"
    assert llm._client is None


async def test_a_server_that_ignores_stream_true_still_works() -> None:
    """Some compatible servers answer one JSON completion; it is replayed as the same events."""
    fake = FakeOpenAIChat(
        api_key=KEY, replies=[Reply(text="Sure.", tool_calls=[("get_time", "")], usage=(5, 2))]
    )

    async def non_streaming(request: Request) -> JSONResponse:
        body = await request.json()
        body.pop("stream_options")
        body["stream"] = False
        inner = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app), base_url="http://fake")
        async with inner:
            resp = await inner.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}
            )
        return JSONResponse(resp.json(), status_code=resp.status_code)

    app = Starlette(routes=[Route("/v1/chat/completions", non_streaming, methods=["POST"])])
    async with running(app) as srv:
        llm = make_llm(srv)
        events = await collect(llm, HELLO, [TIME_TOOL])
        await llm.close()
    assert events[0] == TextDelta("Sure.")
    assert (
        isinstance(events[1], ToolCallRequest)
        and events[1].name == "get_time"
        and events[1].arguments == "{}"
    )
    assert events[2:] == [Usage(input_tokens=5, output_tokens=2)]
