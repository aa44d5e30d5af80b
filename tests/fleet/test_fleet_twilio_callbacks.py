"""A Twilio recording callback of a call placed on instance A, posted to instance B, is handled on A.

Both instances run in this process on one real Redis (A from the call harness, B a second ``Patter`` on
the same account), each joined to the fleet.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from getpatter import OpenAIRealtime, Patter
from getpatter.call.progress import CallStatusChanged, RecordingSaved
from tests.fakes.server import running
from tests.integration.harness import NUMBER, PUBLIC_HOST, call_harness
from tests.redis_server import RedisProcess


async def test_recording_and_status_callbacks_reach_the_instance_that_placed_the_call(
    redis_server: RedisProcess,
) -> None:
    async with call_harness(patter_kwargs={"redis_url": redis_server.url}) as h:
        member = h.phone._member
        assert member is not None
        phone_b = Patter(
            carrier=h.phone.carrier, phone_number=NUMBER, webhook_url=PUBLIC_HOST, redis_url=redis_server.url
        )
        app_b = phone_b.asgi_app(
            phone_b.agent("You are a test.", engine=OpenAIRealtime(api_key="sk-test")), dashboard_token="t"
        )
        on_a: list[object] = []
        on_b: list[object] = []
        for phone, seen in ((h.phone, on_a), (phone_b, on_b)):
            phone.events.on(RecordingSaved, seen.append)
            phone.events.on(CallStatusChanged, seen.append)
        async with member.joined(), app_b.router.lifespan_context(app_b), running(app_b) as b:
            sid = await h.phone.call("+15550003333")
            assert isinstance(sid, str)
            client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
            async with asyncio.timeout(10):
                while not await client.get(f"patter:call:{sid}:owner"):
                    await asyncio.sleep(0.02)
            await client.aclose()
            recording = {
                "AccountSid": h.twilio.account_sid,
                "CallSid": sid,
                "RecordingSid": "RE" + "1" * 32,
                "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE1",
                "RecordingStatus": "completed",
            }
            response = await h.twilio.post_webhook(
                b.http_url, PUBLIC_HOST, "/webhooks/twilio/recording", recording
            )
            assert response.status_code == 204
            forged = await h.twilio.post_webhook(
                b.http_url, PUBLIC_HOST, "/webhooks/twilio/recording", recording, signature="forged"
            )
            assert forged.status_code == 403  # A checked the signature and said so, through B
            status = await h.twilio.send_status_callback(
                sid, b.http_url, PUBLIC_HOST, "ringing", sequence_number=1
            )
            assert status.status_code == 204
            assert phone_b._member is not None and phone_b._member.router is not None
            forwarded = phone_b._member.router.forwarded
        if phone_b._state is not None:
            await phone_b._state.carrier.close()

    assert [type(e).__name__ for e in on_a] == ["RecordingSaved", "CallStatusChanged"]
    assert isinstance(on_a[0], RecordingSaved) and on_a[0].call_id == sid
    assert on_b == []
    assert forwarded == 3
