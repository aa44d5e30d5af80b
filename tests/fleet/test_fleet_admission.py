"""Fleet-wide admission on a real redis-server: one limit across instances, leases that outlive no one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from getpatter import Patter, Twilio
from getpatter.errors import PatterConfigError
from getpatter.fleet.admission import RedisSeats
from getpatter.fleet.redis_link import RedisLink
from getpatter.server.admission import Admission, AdmissionLimits
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes._patience import patient
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio
from tests.redis_server import RedisProcess

NUMBER = "+15550002222"
PUBLIC_HOST = "agent.example.test"
KEY = "t:admission:calls"


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds (``timeout`` is a hang guard, not a measurement)."""

    async def wait() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), patient(timeout))


async def test_two_instances_share_one_limit(links: list[RedisLink]) -> None:
    a, b = (RedisSeats(link, 2) for link in links)
    assert await a.acquire("CA1") and await b.acquire("CA2")
    assert not await a.acquire("CA3") and not await b.acquire("CA3")
    assert await a.live() == 2 and await b.live() == 2
    assert await a.acquire("CA1")  # a call already seated keeps its seat (a retried webhook)
    await b.release("CA2")
    assert await a.acquire("CA3")
    assert a.held == {"CA1", "CA3"} and b.held == frozenset()
    assert await b.acquire("CA4", force=True)  # a call already answered is counted even past the limit
    assert await a.live() == 3


async def test_a_dead_instances_calls_stop_counting_when_their_leases_lapse(links: list[RedisLink]) -> None:
    dying = RedisSeats(links[0], 2, lease_s=0.3)  # never renews: the instance died
    survivor = RedisSeats(links[1], 2, lease_s=30)
    assert await dying.acquire("CA1") and await dying.acquire("CA2")
    assert not await survivor.acquire("CA3")
    await eventually(lambda: survivor.acquire("CA3"))
    assert await survivor.live() == 1
    # Nothing grows without bound: the set itself expires when no instance renews it.
    ttl = await links[1].client.pttl(KEY)
    assert 0 < ttl <= 60_000


async def test_renewal_restarts_every_held_lease(links: list[RedisLink]) -> None:
    seats = RedisSeats(links[0], 5, lease_s=1.0)
    assert await seats.acquire("CA1")
    first = await links[0].client.zscore(KEY, "CA1")
    assert first is not None

    async def later() -> bool:
        seconds, micros = await links[0].client.time()
        return seconds * 1000 + micros // 1000 > first - 900  # Redis's clock moved on

    await eventually(later)
    await seats.renew()
    renewed = await links[0].client.zscore(KEY, "CA1")
    assert renewed is not None and renewed > first
    await links[0].client.zrem(KEY, "CA1")  # lost (e.g. Redis restarted empty): renewal puts it back
    await seats.renew()
    assert await links[0].client.zscore(KEY, "CA1") is not None


async def test_admission_refuses_past_the_fleet_limit_and_counts_it(links: list[RedisLink]) -> None:
    admissions = [Admission(AdmissionLimits(max_loop_lag_s=0, fleet_max_calls=2)) for _ in links]
    for admission, link in zip(admissions, links, strict=True):
        admission.join_fleet(RedisSeats(link, 2))
    first = await admissions[0].try_admit("CA1", "inbound")
    second = await admissions[1].try_admit("CA2", "inbound")
    assert first is not None and second is not None
    assert await admissions[1].try_admit("CA3", "inbound") is None
    assert admissions[1].refused["fleet_capacity"] == 1 and admissions[1].live == 1
    health = await admissions[0].health()
    assert health["accepting"] is False and health["refusing"] == "fleet_capacity"
    assert health["fleet"] == {"live_calls": 2, "capacity": 2}
    first.release()
    await eventually(lambda: _admits(admissions[1], "CA3"))
    for admission in admissions:
        await admission.close()


async def _admits(admission: Admission, call_id: str) -> bool:
    return await admission.try_admit(call_id, "inbound") is not None


async def test_with_redis_away_each_process_decides_alone(
    redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    link = RedisLink(redis_server.url, prefix="t", connect_timeout_s=0.5)
    await link.start()
    seats = RedisSeats(link, 1)
    try:
        assert await seats.acquire("CA1")
        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="getpatter.fleet"):
            assert await seats.acquire("CA2")  # the fleet cannot be asked: not a reason to refuse
        assert await seats.live() is None
        assert any("lost Redis" in r.getMessage() for r in caplog.records)
    finally:
        await link.close()


async def test_fleet_limit_without_a_fleet_is_refused_at_serve() -> None:
    phone = Patter(carrier=Twilio("AC" + "0" * 32, "secret"), phone_number=NUMBER, webhook_url=PUBLIC_HOST)
    agent = phone.agent("You are a test.", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
    with pytest.raises(PatterConfigError, match=r"fleet_max_concurrent_calls.*no redis_url.*Fix"):
        await phone.serve(agent, port=0, on_message=lambda _e: "ok", fleet_max_concurrent_calls=4)


@contextlib.asynccontextmanager
async def _instance(
    twilio: FakeTwilio, rest_url: str, redis_url: str, stt: tuple[str, str], tts: tuple[str, str]
) -> AsyncIterator[tuple[Patter, str]]:
    """One ``serve()`` instance in this process; ``stt``/``tts``: (api key, URL) of the fake vendors."""
    phone = Patter(
        carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=rest_url),
        phone_number=NUMBER,
        webhook_url=PUBLIC_HOST,
        redis_url=redis_url,
    )
    agent = phone.agent(
        "You are a test.",
        first_message="Hello.",
        stt=DeepgramSTT(api_key=stt[0], base_url=stt[1]),
        tts=ElevenLabsTTS(api_key=tts[0], base_url=tts[1]),
    )
    serving = asyncio.create_task(
        phone.serve(agent, port=0, on_message=lambda _e: "ok", dashboard=False, fleet_max_concurrent_calls=1)
    )
    try:
        port = await asyncio.wait_for(phone.ready, patient(20))
        yield phone, f"http://127.0.0.1:{port}"
    finally:
        await phone.disconnect()
        await serving


async def test_two_serving_instances_hold_one_fleet_limit(
    redis_server: RedisProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATTER_MAX_LOOP_LAG_MS", "0")
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    deepgram, tts = FakeDeepgram(), FakeElevenLabs()

    def vendors(stt_url: str, tts_url: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return (deepgram.api_key, stt_url), (tts.api_key, tts_url)

    async with (
        running(twilio.app) as rest,
        running(deepgram.app) as dg,
        running(tts.app) as el,
        _instance(twilio, rest.http_url, redis_server.url, *vendors(dg.ws_url, el.http_url)) as (_, a_url),
        _instance(twilio, rest.http_url, redis_server.url, *vendors(dg.ws_url, el.http_url)) as (_, b_url),
        httpx.AsyncClient() as client,
    ):
        on_a = await twilio.start_inbound_call(a_url, PUBLIC_HOST)
        await on_a.wait_for_agent_audio(timeout=10)
        on_b = await twilio.start_inbound_call(b_url, PUBLIC_HOST)
        busy: dict[str, Any] = (await client.get(b_url + "/health")).json()
        await on_a.hangup()

        async def b_has_room() -> bool:
            return (await client.get(b_url + "/health")).status_code == 200

        await eventually(b_has_room)
        later = await twilio.start_inbound_call(b_url, PUBLIC_HOST)
        await later.wait_for_agent_audio(timeout=10)
        await later.hangup()
        await twilio.aclose()

    assert on_a.rejected is None and later.rejected is None
    assert on_b.rejected == "busy" and on_b.received == []
    assert busy["refusing"] == "fleet_capacity" and busy["fleet"] == {"live_calls": 1, "capacity": 1}
    assert busy["live_calls"] == 0 and busy["refused_calls"]["fleet_capacity"] == 1
