"""The fake Chat Completions server is strict: it refuses what OpenAI refuses, so a sloppy client cannot
pass ``test_llm_openai.py``."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.server import running

KEY = "sk-test-0123456789abcdef"
HELLO: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a phone agent."},
    {"role": "user", "content": "Hi there"},
]


async def test_fake_rejects_what_openai_rejects() -> None:
    fake = FakeOpenAIChat(api_key=KEY)
    ok_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    bad_bodies: list[dict[str, Any]] = [
        {"messages": HELLO},
        {"model": "m", "messages": []},
        {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
        {"model": "m", "messages": [{"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
        {
            "model": "m",
            "messages": [{"role": "assistant", "tool_calls": [ok_call]}, {"role": "user", "content": "x"}],
        },
        {
            "model": "m",
            "messages": [
                {"role": "assistant", "tool_calls": [{**ok_call, "function": {"name": "f", "arguments": {}}}]}
            ],
        },
        {
            "model": "m",
            "messages": [
                {"role": "assistant", "tool_calls": [{"type": "function", "function": ok_call["function"]}]}
            ],
        },
        {"model": "m", "messages": HELLO, "max_tokenz": 5},
        {"model": "m", "messages": HELLO, "tool_choice": "auto"},
        {"model": "m", "messages": HELLO, "tools": [{"name": "f"}]},
    ]
    async with running(fake.app) as srv, httpx.AsyncClient(base_url=srv.http_url) as http:
        auth = {"Authorization": f"Bearer {KEY}"}
        for body in bad_bodies:
            resp = await http.post("/v1/chat/completions", json=body, headers=auth)
            assert resp.status_code == 400, body
            assert set(resp.json()["error"]) == {"message", "type", "param", "code"}
        resp = await http.post("/v1/chat/completions", json={"model": "m", "messages": HELLO})
        assert resp.status_code == 401
        good = {
            "model": "m",
            "messages": [
                *HELLO,
                {"role": "assistant", "content": None, "tool_calls": [ok_call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "done"},
            ],
        }
        resp = await http.post("/v1/chat/completions", json=good, headers=auth)
    assert resp.status_code == 200  # non-streaming: a plain JSON completion
    assert resp.json()["choices"][0]["message"]["content"] == fake.fallback_text
    assert len(fake.requests) == 1
