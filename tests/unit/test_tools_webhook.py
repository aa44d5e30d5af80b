"""Webhook tools against a real HTTP server on 127.0.0.1 (tests/fakes/webhook_tool.py)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import AsyncIterator, Sequence

import pytest

from getpatter.tools import Tool, ToolExecutor, ToolOutcome
from getpatter.tools.webhook import MAX_RESPONSE_BYTES, WebhookCaller, WebhookToolError, retry_after_seconds
from tests.fakes.server import running
from tests.fakes.webhook_tool import FakeWebhookTool, Step

CONTEXT = {"call_id": "CA42", "caller": "+15550001111", "callee": "+15550002222"}


class Sleeps:
    """Injected back-off sleep: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@contextlib.asynccontextmanager
async def webhook(script: Sequence[Step]) -> AsyncIterator[tuple[FakeWebhookTool, str]]:
    fake = FakeWebhookTool(script)
    async with running(fake.app) as srv:
        try:
            yield fake, srv.http_url + "/hook"
        finally:
            fake.release()


async def run(
    url: str, sleeps: Sleeps, arguments: str = '{"city": "Rome"}', timeout_s: float | None = None
) -> ToolOutcome:
    hook = Tool("weather", webhook_url=url, timeout_s=timeout_s)
    async with ToolExecutor([hook], context=dict(CONTEXT), allow_private_webhooks=True, sleep=sleeps) as ex:
        return await ex.execute("weather", arguments)


def error_of(outcome: ToolOutcome) -> str:
    assert outcome.is_error
    payload = json.loads(outcome.result)
    assert payload["fallback"] is True
    return str(payload["error"])


async def test_posts_contract_payload_and_returns_json_text() -> None:
    sleeps = Sleeps()
    async with webhook([Step(json={"temp": 21, "sky": "clear"})]) as (fake, url):
        out = await run(url, sleeps)
    assert (out.is_error, json.loads(out.result)) == (False, {"temp": 21, "sky": "clear"})
    [request] = fake.requests
    assert request.body == {
        "tool": "weather",
        "arguments": {"city": "Rome"},
        "call_id": "CA42",
        "caller": "+15550001111",
        "callee": "+15550002222",
        "attempt": 1,
    }
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("getpatter/")
    assert sleeps.delays == []


async def test_text_response_passed_as_text() -> None:
    async with webhook([Step(text="Sunny, 21 degrees")]) as (_fake, url):
        out = await run(url, Sleeps())
    assert (out.result, out.is_error) == ("Sunny, 21 degrees", False)


async def test_retried_after_500_then_succeeds() -> None:
    sleeps = Sleeps()
    async with webhook([Step(status=500), Step(json={"ok": 1})]) as (fake, url):
        out = await run(url, sleeps)
    assert (out.result, out.is_error) == ('{"ok":1}', False)
    assert fake.attempts == [1, 2]
    assert sleeps.delays == [0.5]


async def test_gives_up_after_three_attempts_with_exponential_backoff() -> None:
    sleeps = Sleeps()
    async with webhook([Step(status=503)]) as (fake, url):
        out = await run(url, sleeps)
    assert "HTTP 503" in error_of(out)
    assert "3 attempts" in error_of(out)
    assert fake.attempts == [1, 2, 3]
    assert sleeps.delays == [0.5, 1.0]


async def test_429_retry_after_honoured_and_capped() -> None:
    sleeps = Sleeps()
    script = [
        Step(status=429, headers={"Retry-After": "2"}),
        Step(status=429, headers={"Retry-After": "120"}),
        Step(json={"ok": True}),
    ]
    async with webhook(script) as (fake, url):
        out = await run(url, sleeps)
    assert not out.is_error
    assert fake.attempts == [1, 2, 3]
    assert sleeps.delays == [2.0, 5.0]


async def test_timeout_is_not_retried() -> None:
    sleeps = Sleeps()
    async with webhook([Step(delay_s=30, json={"late": True})]) as (fake, url):
        out = await run(url, sleeps, timeout_s=2)
        assert "timed out" in error_of(out)
        # One attempt at most (on a very busy machine the request may not even arrive in 2 s); no retry.
        assert fake.attempts in ([], [1])
    assert sleeps.delays == []


@pytest.mark.parametrize(
    "step", [Step(stream_bytes=MAX_RESPONSE_BYTES + 1), Step(sized_bytes=2 * MAX_RESPONSE_BYTES)]
)
async def test_response_over_1_mb_refused(step: Step) -> None:
    sleeps = Sleeps()
    async with webhook([step]) as (fake, url):
        out = await run(url, sleeps)
    assert "too large" in error_of(out)
    assert fake.attempts == [1]


async def test_response_of_exactly_1_mb_accepted() -> None:
    async with webhook([Step(stream_bytes=MAX_RESPONSE_BYTES)]) as (_fake, url):
        out = await run(url, Sleeps())
    assert (out.is_error, len(out.result)) == (False, MAX_RESPONSE_BYTES)


@pytest.mark.parametrize("status", [400, 404, 302])
async def test_client_errors_and_redirects_not_retried(status: int) -> None:
    sleeps = Sleeps()
    step = Step(status=status, headers={"Location": "http://169.254.169.254/"} if status == 302 else {})
    async with webhook([step]) as (fake, url):
        out = await run(url, sleeps)
    assert f"HTTP {status}" in error_of(out)
    assert fake.attempts == [1]  # and the redirect was not followed
    assert sleeps.delays == []


async def test_connection_errors_are_retried() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps = Sleeps()
    out = await run(f"http://127.0.0.1:{port}/hook", sleeps)
    assert "connection error" in error_of(out)
    assert sleeps.delays == [0.5, 1.0]


async def test_ssrf_guard_refuses_loopback_by_default() -> None:
    sleeps = Sleeps()
    async with webhook([Step(json={"secret": 1})]) as (fake, url):
        hook = Tool("weather", webhook_url=url)
        async with ToolExecutor([hook], context={}, sleep=sleeps) as ex:
            out = await ex.execute("weather", "{}")
    assert "non-public address 127.0.0.1" in error_of(out)
    assert fake.requests == []
    assert sleeps.delays == []  # a refusal is final


async def test_unresolvable_host_is_retried_then_fails() -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise OSError("temporary failure in name resolution")

    sleeps = Sleeps()
    hook = Tool("weather", webhook_url="https://tools.example.com/hook")
    async with ToolExecutor([hook], context={}, sleep=sleeps, resolve=no_dns) as ex:
        out = await ex.execute("weather", "{}")
    assert "cannot resolve" in error_of(out)
    assert sleeps.delays == [0.5, 1.0]


async def test_missing_context_fields_are_empty_strings() -> None:
    async with webhook([Step(json={})]) as (fake, url):
        caller = WebhookCaller(allow_private=True)
        try:
            assert await caller.call(url, "t", {}, {}, timeout_s=5) == "{}"
        finally:
            await caller.aclose()
    assert fake.requests[0].body == {
        "tool": "t",
        "arguments": {},
        "call_id": "",
        "caller": "",
        "callee": "",
        "attempt": 1,
    }


async def test_client_is_shared_and_closed_once() -> None:
    async with webhook([Step(json={"n": 1})]) as (fake, url):
        caller = WebhookCaller(allow_private=True)
        await caller.call(url, "t", {}, CONTEXT, timeout_s=5)
        client = caller._client
        await caller.call(url, "t", {}, CONTEXT, timeout_s=5)
        assert caller._client is client and client is not None
        await caller.aclose()
        await caller.aclose()  # idempotent
        assert client.is_closed
        with pytest.raises(WebhookToolError, match="closed"):
            await caller.call(url, "t", {}, CONTEXT, timeout_s=5)
    assert fake.attempts == [1, 1]


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-4") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("nan") is None
    # HTTP date, 4 s after the given "now"
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:04 GMT", now=1445412480.0) == 4.0
