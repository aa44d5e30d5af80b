"""A fleet member built by ``asgi_app()`` joins in the app's lifespan, routes callbacks, stays optional."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from getpatter import Patter, Twilio
from getpatter.call.progress import CallStatusChanged
from getpatter.errors import PatterConnectionError
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio, new_sid
from tests.redis_server import RedisProcess

HOST = "agent.example.test"
NUMBER = "+15550002222"


def _phone(twilio: FakeTwilio, redis_url: str, rest: str = "http://127.0.0.1:9") -> Patter:
    return Patter(
        carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=rest),
        phone_number=NUMBER,
        webhook_url=HOST,
        redis_url=redis_url,
    )


async def _subscribers(url: str, channel: str) -> int:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        counts = await client.pubsub_numsub(channel)
        return int(counts[0][1])
    finally:
        await client.aclose()


async def test_an_asgi_app_joins_the_fleet_for_its_lifespan(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    phone = _phone(twilio, redis_server.url)
    app = phone.asgi_app(phone.agent("You are a test."), dashboard_token="t")
    member = phone._member
    assert member is not None and member.link is None  # built, not joined: a single instance so far
    async with app.router.lifespan_context(app):
        assert member.link is not None and member.link.healthy
        channel = f"patter:inst:{member.link.instance_id}"
        assert await _subscribers(redis_server.url, channel) == 1
    assert member.link is None
    assert await _subscribers(redis_server.url, channel) == 0
    await twilio.aclose()


async def test_serving_with_redis_down_is_an_error_naming_the_url(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    url = f"redis://:hunter2-secret@127.0.0.1:{redis_server.port}/0"
    redis_server.stop()
    phone = _phone(twilio, url)
    with pytest.raises(PatterConnectionError) as info:
        await asyncio.wait_for(phone.serve(phone.agent("You are a test."), port=0), 30)
    assert f"redis://:***@127.0.0.1:{redis_server.port}/0" in str(info.value)
    assert "hunter2" not in str(info.value)
    await twilio.aclose()


async def test_a_callback_for_a_call_whose_instance_is_gone_is_handled_where_it_lands(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    phone = _phone(twilio, redis_server.url)
    app = phone.asgi_app(phone.agent("You are a test."), dashboard_token="t")
    seen: list[CallStatusChanged] = []
    phone.events.on(CallStatusChanged, seen.append)
    sid = new_sid("CA")
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.set(f"patter:call:{sid}:owner", "an-instance-that-died", ex=60)
    await client.aclose()
    async with app.router.lifespan_context(app), running(app) as server:
        form = {
            "AccountSid": twilio.account_sid,
            "CallSid": sid,
            "CallStatus": "ringing",
            "Direction": "outbound-api",
        }
        response = await twilio.post_webhook(server.http_url, HOST, "/webhooks/twilio/status", form)
        assert response.status_code == 204
        unsigned = await twilio.post_webhook(
            server.http_url, HOST, "/webhooks/twilio/status", form, sign=False
        )
        assert unsigned.status_code == 403  # still verified here
    assert [(e.call_id, e.status) for e in seen] == [(sid, "ringing")]
    assert phone._member is not None and phone._member.router is None  # left the fleet
    await twilio.aclose()


def test_a_single_instance_never_imports_redis(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys
        os.environ["OPENAI_API_KEY"] = "sk-test"
        from getpatter import Patter, Twilio
        phone = Patter(carrier=Twilio("AC" + "0" * 32, "token"), phone_number="+15550002222",
                       webhook_url="agent.example.test")
        phone.asgi_app(phone.agent("You are a test."))
        print("redis" in sys.modules, phone._member)
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), "PATTER_DASHBOARD_NOTIFY": "0"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.stdout.split() == ["False", "None"], done.stderr
