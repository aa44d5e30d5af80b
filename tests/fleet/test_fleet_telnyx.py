"""Telnyx call events of a call placed on instance A reach A through instance B (one real Redis).

Both instances run in this process (A from the Telnyx harness, B a second ``Patter`` with the same
account), each joined to the fleet through its app's lifespan, each on its own port.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from getpatter import OpenAIRealtime, Patter
from getpatter.call.results import CallResult
from tests.fakes.server import running
from tests.integration.telnyx_harness import NUMBER, PUBLIC_HOST, telnyx_harness
from tests.integration.test_outbound_telnyx import CALLEE, _dialled
from tests.redis_server import RedisProcess


async def test_telnyx_events_of_a_call_placed_on_a_resolve_its_result_through_b(
    redis_server: RedisProcess,
) -> None:
    async with telnyx_harness(patter_kwargs={"redis_url": redis_server.url}) as h:
        member = h.phone._member
        assert member is not None
        async with member.joined():
            phone_b = Patter(
                carrier=h.phone.carrier,
                phone_number=NUMBER,
                webhook_url=PUBLIC_HOST,
                redis_url=redis_server.url,
            )
            agent_b = phone_b.agent("You are a test.", engine=OpenAIRealtime(api_key="sk-test"))
            app_b = phone_b.asgi_app(agent_b, dashboard_token="t")
            async with app_b.router.lifespan_context(app_b), running(app_b) as b:
                task = asyncio.create_task(h.phone.call(CALLEE, ring_timeout=30, wait=True))
                call, _ = await _dialled(h)
                client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
                async with asyncio.timeout(10):  # the owner is recorded just after the dial returned
                    while not await client.get(f"patter:call:{call.call_control_id}:owner"):
                        await asyncio.sleep(0.02)
                await client.aclose()
                for event_type, extra in (
                    ("call.initiated", {"direction": "outgoing"}),
                    ("call.hangup", {"hangup_cause": "user_busy", "hangup_source": "callee"}),
                ):
                    envelope = h.telnyx.envelope(event_type, call, **extra)
                    response = await h.telnyx.post_webhook(b.http_url, envelope)
                    assert response.status_code == 200
                result = await asyncio.wait_for(task, 10)
                assert phone_b._member is not None and phone_b._member.router is not None
                forwarded = phone_b._member.router.forwarded
                assert member.router is not None and member.router.served == 2
            if phone_b._state is not None:
                await phone_b._state.carrier.close()

    assert result == CallResult(call_id=call.call_control_id, outcome="busy", status="busy")
    assert forwarded == 2
