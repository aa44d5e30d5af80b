"""GoogleLLM against the strict fake Gemini streamGenerateContent: conversion, streaming, tools, errors."""

from __future__ import annotations

import contextlib
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
from getpatter.llm import google as google_mod
from getpatter.llm.base import LLMEvent, TextDelta, ToolCallRequest, Usage
from getpatter.llm.google import CALL_START_TEXT, LOCAL_ID_PREFIX, GoogleLLM
from tests.fakes.gemini import FakeGemini, Reply
from tests.fakes.server import running

KEY = "AIza-test-0123456789"
HELLO: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a phone agent."},
    {"role": "user", "content": "Hi there"},
]
CITY = {"type": "string", "description": "City name"}
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"city": CITY},
        "required": ["city"],
        "additionalProperties": False,
    },
}
TIME = {"name": "get_time", "description": "Local time.", "parameters": {"type": "object", "properties": {}}}


def make(srv: Any, **kwargs: Any) -> GoogleLLM:
    return GoogleLLM(api_key=kwargs.pop("api_key", KEY), base_url=srv.http_url + "/v1beta", **kwargs)


async def collect(llm: GoogleLLM, messages: Sequence[dict[str, Any]] = HELLO, tools: Any = None) -> list[Any]:
    return [ev async for ev in llm.stream(messages, tools)]


def text_of(events: list[LLMEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def replay(calls: list[ToolCallRequest], results: list[str]) -> list[dict[str, Any]]:
    """The OpenAI-shaped history a pipeline builds after running ``calls``."""
    tool_calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]
    return [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": tool_calls},
        *({"role": "tool", "tool_call_id": c.id, "content": r} for c, r in zip(calls, results, strict=True)),
    ]


async def test_request_url_headers_and_body_fields() -> None:
    fake = FakeGemini(api_key=KEY)
    async with running(fake.app) as srv:
        llm = make(srv, temperature=0.3, max_output_tokens=200)
        await collect(llm, HELLO, [WEATHER, TIME])
        await llm.close()
    assert fake.models == ["gemini-2.5-flash"]
    assert fake.headers[-1]["x-goog-api-key"] == KEY and "authorization" not in fake.headers[-1]
    assert fake.last_request() == {
        "contents": [{"role": "user", "parts": [{"text": "Hi there"}]}],
        "systemInstruction": {"parts": [{"text": "You are a phone agent."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Current weather for a city.",
                        "parameters": {"type": "object", "properties": {"city": CITY}, "required": ["city"]},
                    },
                    {"name": "get_time", "description": "Local time."},
                ]
            }
        ],
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 200},
    }


async def test_text_streams_then_usage_with_cache_and_thoughts() -> None:
    answer = "Good morning, how can I help?"
    fake = FakeGemini(api_key=KEY, replies=[Reply(text=answer, usage=(1200, 9), cached=1000, thoughts=4)])
    async with running(fake.app) as srv:
        llm = make(srv)
        events = await collect(llm)
        await llm.close()
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        answer[i : i + 6] for i in range(0, 29, 6)
    ]
    assert events[-1] == Usage(input_tokens=200, output_tokens=13, cache_read_tokens=1000)


async def test_tool_round_trip_with_local_ids_and_thought_signatures() -> None:
    fake = FakeGemini(
        api_key=KEY,
        replies=[Reply(tool_calls=[("get_weather", {"city": "Rome"}), ("get_time", {})]), "Sunny, 2pm."],
    )
    async with running(fake.app) as srv:
        llm = make(srv)
        events = await collect(llm, HELLO, [WEATHER, TIME])
        calls = [e for e in events if isinstance(e, ToolCallRequest)]
        assert [(c.name, c.arguments) for c in calls] == [
            ("get_weather", '{"city": "Rome"}'),
            ("get_time", "{}"),
        ]
        assert all(c.id.startswith(LOCAL_ID_PREFIX) for c in calls) and calls[0].id != calls[1].id
        assert isinstance(events[-1], Usage)
        follow = await collect(llm, replay(calls, ['{"temp_c": 21}', "14:00"]), [WEATHER, TIME])
        await llm.close()
    assert text_of(follow) == "Sunny, 2pm."
    assert fake.last_request()["contents"][1:] == [
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
             "thoughtSignature": "sig-1-0"},
            {"functionCall": {"name": "get_time", "args": {}}, "thoughtSignature": "sig-1-1"}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "14:00"}}}]},
    ]  # fmt: skip


async def test_gemini_call_ids_are_used_and_echoed() -> None:
    fake = FakeGemini(
        api_key=KEY, replies=[Reply(tool_calls=[("get_weather", {"city": "Oslo"})], with_ids=True)]
    )
    async with running(fake.app) as srv:
        llm = make(srv)
        (call,) = [e for e in await collect(llm, HELLO, [WEATHER]) if isinstance(e, ToolCallRequest)]
        assert call.id == "gc-1-0"
        await collect(llm, replay([call], ["[1, 2]"]), [WEATHER])
        await llm.close()
    model_turn, user_turn = fake.last_request()["contents"][1:]
    assert model_turn["parts"][0]["functionCall"]["id"] == "gc-1-0"
    assert user_turn["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"result": [1, 2]}, "id": "gc-1-0"}}
    ]


async def test_a_history_whose_signatures_were_lost_is_refused_like_gemini_does() -> None:
    fake = FakeGemini(api_key=KEY, replies=[Reply(tool_calls=[("get_weather", {"city": "Rome"})])])
    async with running(fake.app) as srv:
        llm = make(srv)
        calls = [e for e in await collect(llm, HELLO, [WEATHER]) if isinstance(e, ToolCallRequest)]
        stranger = make(srv)  # a different instance never saw the signature
        with pytest.raises(PatterError, match="400"):
            await collect(stranger, replay(calls, ["ok"]), [WEATHER])
        await llm.close()
        await stranger.close()
    assert "thought_signature" in fake.rejected[-1][1]


async def test_greeting_first_history_and_merged_turns() -> None:
    fake = FakeGemini(api_key=KEY)
    history = [
        {"role": "assistant", "content": "Hello, this is Acme."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": [{"type": "text", "text": "[DTMF: 1]"}]},
        {"role": "developer", "content": "Be brief."},
    ]
    async with running(fake.app) as srv:
        llm = make(srv)
        await collect(llm, history)
        await llm.close()
    body = fake.last_request()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": CALL_START_TEXT}]},
        {"role": "model", "parts": [{"text": "Hello, this is Acme."}]},
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "[DTMF: 1]"}]},
    ]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=503), PatterConnectionError),
        (Reply(status=500), PatterConnectionError),
        (Reply(status=429), RateLimitError),
        (Reply(status=404), PatterError),
        (Reply(text="Hello there caller, one moment please", drop_mid_stream=True), PatterConnectionError),
    ],
)
async def test_errors_map_to_the_hierarchy(reply: Reply, error: type[Exception]) -> None:
    fake = FakeGemini(api_key=KEY, replies=[reply])
    async with running(fake.app) as srv:
        llm = make(srv)
        with pytest.raises(error) as info:
            await collect(llm)
        await llm.close()
    if error is PatterError:
        assert not isinstance(info.value, PatterConnectionError | AuthenticationError)


async def test_invalid_key_400_is_authentication_error_without_the_key() -> None:
    fake = FakeGemini(api_key=KEY)
    async with running(fake.app) as srv:
        llm = make(srv, api_key="AIza-wrong-secret")
        with pytest.raises(AuthenticationError) as info:
            await collect(llm)
        await llm.close()
    assert "AIza-wrong-secret" not in str(info.value) and "AIza-wrong-secret" not in repr(llm)


async def test_cancelling_the_consumer_closes_the_http_stream() -> None:
    fake = FakeGemini(api_key=KEY, replies=[Reply(text="y" * 60, chunk_delay_s=0.05)])
    async with running(fake.app) as srv:
        llm = make(srv)
        async with contextlib.aclosing(llm.stream(HELLO)) as stream:
            assert await anext(stream) == TextDelta("yyyyyy")
        await fake.streams.wait_aborted()
        await llm.close()


def test_missing_key_and_env_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match=r"api_key.*GEMINI_API_KEY.*GOOGLE_API_KEY"):
        GoogleLLM()
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert google_mod.LLM()._api_key == "google-key"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    llm = google_mod.LLM(model="models/gemini-2.5-pro")
    assert (llm._api_key, llm.model, llm.provider_id) == ("gemini-key", "gemini-2.5-pro", "google")


async def test_fake_rejects_what_gemini_rejects() -> None:
    fake = FakeGemini(api_key=KEY)
    user = {"role": "user", "parts": [{"text": "hi"}]}
    call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}
    bad = [
        {"contents": [user], "bogus": 1},
        {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
        {
            "contents": [
                user,
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
            ]
        },
        {"contents": [user, call, {"role": "user", "parts": [{"text": "no response"}]}]},
        {
            "contents": [
                user,
                call,
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "s"}}]},
            ]
        },
        {
            "contents": [user],
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}}]}],
        },
        {"contents": [{"role": "user", "parts": [{"text": "a", "functionCall": {"name": "f"}}]}]},
    ]
    url = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    async with running(fake.app) as srv, httpx.AsyncClient(base_url=srv.http_url) as client:
        headers = {"x-goog-api-key": KEY}
        assert (await client.post(url, json={"contents": [user]})).status_code == 403
        assert (
            await client.post(url.removesuffix("?alt=sse"), json={"contents": [user]}, headers=headers)
        ).status_code == 400
        for body in bad:
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 400, body
            assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
        ok = {
            "contents": [
                user,
                call,
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
            ]
        }
        assert (await client.post(url, json=ok, headers=headers)).status_code == 200


# -- Vertex AI --------------------------------------------------------------------------------------------


async def test_vertex_with_a_project_posts_to_the_project_path_with_a_fresh_bearer_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeGemini(api_key=KEY, replies=["From Vertex.", "Again."], access_token="ya29.fresh")
    minted: list[str] = []

    async def token() -> str:
        minted.append("ya29.fresh")
        return "ya29.fresh"

    async with running(fake.app) as srv:
        llm = GoogleLLM(
            vertexai=True,
            project="acme-prod",
            location="europe-west4",
            access_token=token,
            base_url=srv.http_url + "/v1",
        )
        assert text_of(await collect(llm)) == "From Vertex."
        assert text_of(await collect(llm)) == "Again."
        await llm.close()
    path = "/v1/projects/acme-prod/locations/europe-west4/publishers/google/models/gemini-2.5-flash"
    assert fake.paths == [f"{path}:streamGenerateContent"] * 2
    assert (
        fake.headers[-1]["authorization"] == "Bearer ya29.fresh" and "x-goog-api-key" not in fake.headers[-1]
    )
    assert len(minted) == 2  # asked for every request: tokens expire
    assert fake.last_request()["contents"] == [{"role": "user", "parts": [{"text": "Hi there"}]}]


async def test_vertex_express_mode_uses_the_api_key_on_the_publisher_path() -> None:
    fake = FakeGemini(api_key=KEY, replies=["Express."])
    async with running(fake.app) as srv:
        llm = GoogleLLM(api_key=KEY, vertexai=True, base_url=srv.http_url + "/v1")
        assert text_of(await collect(llm)) == "Express."
        await llm.close()
    assert fake.paths == ["/v1/publishers/google/models/gemini-2.5-flash:streamGenerateContent"]
    assert fake.headers[-1]["x-goog-api-key"] == KEY


async def test_a_bad_vertex_token_is_an_authentication_error_without_the_token() -> None:
    fake = FakeGemini(api_key=KEY)
    async with running(fake.app) as srv:
        llm = GoogleLLM(
            vertexai=True, project="p", access_token="ya29.WRONG-secret", base_url=srv.http_url + "/v1"
        )
        with pytest.raises(AuthenticationError) as info:
            await collect(llm)
        await llm.close()
    assert "ya29.WRONG-secret" not in str(info.value)


def test_vertex_settings_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    regional = GoogleLLM(vertexai=True, project="p", access_token="t")
    assert regional.url.startswith(
        "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/"
    )
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "global")
    assert GoogleLLM(vertexai=True, access_token="t").url.startswith(
        "https://aiplatform.googleapis.com/v1/projects/from-env/locations/global/"
    )
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT")
    with pytest.raises(PatterConfigError, match="vertexai=True"):
        GoogleLLM(api_key=KEY, project="p")
    with pytest.raises(PatterConfigError, match="needs access_token="):
        GoogleLLM(vertexai=True, project="p")
    with pytest.raises(PatterConfigError, match="need project="):
        GoogleLLM(api_key=KEY, vertexai=True, location="us-east1")
    with pytest.raises(PatterConfigError, match="API key"):
        GoogleLLM(vertexai=True)  # express mode without a key
