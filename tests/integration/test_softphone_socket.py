"""The in-page caller's media socket, driven by a plain WebSocket client speaking the page's protocol.

The server, the in-page carrier and the pipeline are the product; the vendors are the fakes of
``tests/fakes``. Bad input ends the one browser call (``protocol_error``) and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fakes._patience import patient
from tests.fakes._segmenter import silence, tone
from tests.integration.harness import Harness, call_harness

SOCKET = "/api/dashboard/phone/socket"


def socket_url(h: Harness, token: str | None = None) -> str:
    token = h.phone.dashboard_token if token is None else token
    return f"{h.server.ws_url}{SOCKET}" + (f"?token={token}" if token else "")


async def start(ws: ClientConnection, rates: list[int] | None = None) -> dict[str, Any]:
    await ws.send(json.dumps({"event": "start", "sample_rates": rates or [24000, 16000]}))
    reply = json.loads(await asyncio.wait_for(ws.recv(), patient(10)))
    assert reply["event"] == "started"
    return dict(reply)


async def play_along(ws: ClientConnection, seen: list[dict[str, Any]]) -> None:
    """What the page does with the server's messages: collect them, and echo each mark at once (as if
    everything before it had played)."""
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            msg = json.loads(message)
            seen.append(msg)
            if msg["event"] == "mark":
                await ws.send(json.dumps({"event": "mark", "name": msg["name"]}))


async def read_until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(patient(15)):
            async for message in ws:
                seen.append(json.loads(message))
    except ConnectionClosed:
        pass
    return seen


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    async with call_harness(utterances=["Hello there."], replies=["Hi, how can I help?"]) as harness:
        yield harness


async def test_a_call_without_the_token_is_refused_before_it_starts(h: Harness) -> None:
    for token in ("", "wrong-token"):
        with pytest.raises(InvalidStatus) as refused:
            await connect(socket_url(h, token))
        assert refused.value.response.status_code == 403
    await asyncio.sleep(0)
    assert h.ended == [] and h.phone.metrics_store.get_active_calls() == []


async def test_a_call_greets_hears_answers_and_is_reported_as_a_browser_call(h: Harness) -> None:
    async with connect(socket_url(h)) as ws:
        started = await start(ws, [16000])
        assert started["sample_rate"] == 16000 and started["call_id"].startswith("BR")
        seen: list[dict[str, Any]] = []
        page = asyncio.create_task(play_along(ws, seen))
        await h.wait_transcript("assistant", "Hello, thanks for calling.", timeout=20)
        greeting = [base64.b64decode(m["audio"]) for m in seen if m["event"] == "media"]
        assert greeting and all(len(chunk) % 2 == 0 for chunk in greeting)  # PCM16 at 16 kHz
        speech = silence(300, 16000) + tone(800, 16000) + silence(900, 16000)
        for i in range(0, len(speech), 640):  # 20 ms frames, as the page sends them
            await ws.send(speech[i : i + 640])
        await h.wait_transcript("user", "Hello there.", timeout=20)
        await h.wait_transcript("assistant", "Hi, how can I help?", timeout=20)
        await ws.send(json.dumps({"event": "stop"}))
        await asyncio.wait_for(page, patient(10))
    await h.wait_ended()
    assert h.ended[0]["call_id"] == started["call_id"]
    assert h.deepgram.connections[0].query["sample_rate"] == "16000"
    record = h.phone.metrics_store.get_call(started["call_id"])
    assert record is not None and record["telephony_provider"] == "browser"
    assert record["metrics"]["cost"]["telephony"] == 0  # no carrier minutes billed for a browser call
    assert record["metrics"]["cost"]["stt"] > 0  # while the vendors' usage is priced as on any call


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        json.dumps({"event": "dance"}),
        json.dumps({"event": "mark"}),
        json.dumps({"event": "start", "sample_rates": [16000]}),  # a second start
        b"\x01\x02\x03",  # odd-length PCM16
        b"\x00" * 30_000,  # oversized audio frame
        "x" * 30_000,  # oversized text frame
    ],
    ids=[
        "not-json",
        "unknown-event",
        "mark-without-name",
        "second-start",
        "odd-audio",
        "big-audio",
        "big-text",
    ],
)
async def test_a_bad_frame_ends_that_browser_call_and_nothing_else(h: Harness, bad: str | bytes) -> None:
    async with connect(socket_url(h)) as victim, connect(socket_url(h)) as bystander:
        doomed = await start(victim)
        other = await start(bystander)
        await victim.send(bad)
        await read_until_closed(victim)
        assert victim.close_code == 1000
        await h.wait_ended()
        assert [(e["call_id"], e["reason"]) for e in h.ended] == [(doomed["call_id"], "protocol_error")]
        # The other call and the server go on.
        await bystander.send(b"\x00" * 640)
        async with httpx.AsyncClient() as client:
            health = await client.get(h.server.http_url + "/health")
        assert health.json()["active_calls"] == 1
        assert [c["call_id"] for c in h.phone.metrics_store.get_active_calls()] == [other["call_id"]]


@pytest.mark.parametrize(
    "first",
    [
        "{}",
        json.dumps({"event": "start", "sample_rates": [8000]}),
        json.dumps({"event": "stop"}),
        b"\x00\x00",
    ],
    ids=["no-event", "unsupported-rate", "stop-first", "audio-first"],
)
async def test_a_socket_that_does_not_start_properly_is_closed_without_a_call(
    h: Harness, first: str | bytes
) -> None:
    async with connect(socket_url(h)) as ws:
        await ws.send(first)
        await read_until_closed(ws)
        assert ws.close_code == 1008
    assert h.ended == [] and h.phone.metrics_store.get_active_calls() == []
    assert h.deepgram.connections == []  # no vendor connection was opened


async def test_the_softphone_is_offered_only_where_the_dashboard_is_protected() -> None:
    async with call_harness(serve_kwargs={"softphone": False}) as off, httpx.AsyncClient() as client:
        url = f"{off.server.http_url}/api/dashboard/phone?token={off.phone.dashboard_token}"
        assert (await client.get(url)).status_code == 404
    async with call_harness(serve_kwargs={"allow_insecure_dashboard": True}) as insecure:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{insecure.server.http_url}/api/dashboard/phone")).status_code == 404
        with pytest.raises(InvalidStatus):
            await connect(socket_url(insecure, ""))


async def test_a_realtime_agent_answers_the_page_with_its_tools_at_24_khz() -> None:
    from getpatter.tools import tool
    from tests.fakes.openai_realtime import Reply
    from tests.integration.test_realtime_call import realtime_harness

    looked_up: list[str] = []

    @tool
    def lookup_order(order_id: str) -> dict[str, str]:
        """Look up an order.

        Args:
            order_id: The order number.
        """
        looked_up.append(order_id)
        return {"order_id": order_id, "status": "shipped"}

    script = [
        "Hello, thanks for calling.",
        Reply(tool="lookup_order", arguments={"order_id": "42"}),
        "Your order has shipped.",
    ]
    async with realtime_harness(
        script,
        ["Where is order 42?"],
        agent_kwargs={"tools": [lookup_order]},
        serve_kwargs={"dashboard_token": "rt-token"},
    ) as h:
        url = h.server_url.replace("http://", "ws://") + SOCKET + "?token=rt-token"
        async with connect(url) as ws:
            started = await start(ws, [24000])
            assert started["sample_rate"] == 24000
            speech = silence(400, 24000) + tone(700, 24000) + silence(900, 24000)
            for i in range(0, len(speech), 960):
                await ws.send(speech[i : i + 960])
            async with asyncio.timeout(patient(15)):
                while not looked_up or not h.engine.connections[0].sent_of("response.done"):
                    msg = json.loads(await ws.recv())
                    if msg["event"] == "mark":
                        await ws.send(json.dumps({"event": "mark", "name": msg["name"]}))
            await ws.send(json.dumps({"event": "stop"}))
            await read_until_closed(ws)
        await h.wait_ended()
    update = next(e for e in h.engine.connections[0].events if e["type"] == "session.update")
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert looked_up == ["42"]
    assert h.ended[0]["call_id"] == started["call_id"]


def metadata(root: Path, call_id: str) -> dict[str, Any]:
    (path,) = root.glob(f"calls/*/*/*/{call_id}/metadata.json")
    return dict(json.loads(path.read_text()))


async def test_a_browser_call_is_written_to_the_call_log(tmp_path: Path) -> None:
    async with call_harness(
        utterances=["Hello there."], replies=["Hi."], patter_kwargs={"persist": str(tmp_path)}
    ) as h:
        async with connect(socket_url(h)) as ws:
            started = await start(ws, [16000])
            page = asyncio.create_task(play_along(ws, []))
            speech = silence(300, 16000) + tone(700, 16000) + silence(900, 16000)
            for i in range(0, len(speech), 640):
                await ws.send(speech[i : i + 640])
            await h.wait_transcript("assistant", "Hi.", timeout=20)
            await ws.send(json.dumps({"event": "stop"}))
            await asyncio.wait_for(page, patient(10))
        await h.wait_ended()
        await h.phone.flush_logs()
    meta = metadata(tmp_path, started["call_id"])
    assert meta["telephony_provider"] == "browser" and meta["status"] == "completed"
    assert meta["turns"] == 2


async def test_on_a_loopback_server_the_softphone_is_open_to_the_dashboards_own_page() -> None:
    from getpatter import Patter, Twilio
    from getpatter.engines.openai_realtime import OpenAIRealtime
    from tests.fakes.openai_realtime import FakeOpenAIRealtime
    from tests.fakes.server import running

    phone = Patter(
        carrier=Twilio(account_sid="AC" + "0" * 32, auth_token="secret"),
        phone_number="+15550001234",
        webhook_url="127.0.0.1:8000",
    )
    fake = FakeOpenAIRealtime(script=["Hello."], utterances=[])
    async with (
        running(fake.app) as engine,
        running(
            phone.asgi_app(
                phone.agent(
                    "Be brief.", engine=OpenAIRealtime(api_key=fake.api_key, base_url=engine.http_url + "/v1")
                )
            )
        ) as srv,
        httpx.AsyncClient() as client,
    ):
        assert phone.dashboard_token == ""  # nothing but this machine can reach it
        settings = await client.get(srv.http_url + "/api/dashboard/phone")
        assert settings.status_code == 200 and settings.json()["enabled"] is True
        with pytest.raises(InvalidStatus):
            await connect(srv.ws_url + SOCKET, origin="https://elsewhere.example")
        async with connect(srv.ws_url + SOCKET, origin=srv.http_url) as ws:
            started = await start(ws, [16000])
            assert started["call_id"].startswith("BR")
            await ws.send(json.dumps({"event": "stop"}))
            await read_until_closed(ws)
            assert ws.close_code == 1000


async def test_a_browser_call_past_the_process_cap_is_refused_busy_and_the_admitted_one_goes_on() -> None:
    async with call_harness(
        utterances=["Hello there."], replies=["Hi."], serve_kwargs={"max_concurrent_calls": 1}
    ) as h:
        async with connect(socket_url(h)) as first:
            admitted = await start(first)
            async with connect(socket_url(h)) as second:
                await second.send(json.dumps({"event": "start", "sample_rates": [16000]}))
                assert await read_until_closed(second) == []  # never started
                assert second.close_code == 1013 and second.close_reason == "busy"
            assert [c["call_id"] for c in h.phone.metrics_store.get_active_calls()] == [admitted["call_id"]]
            await first.send(json.dumps({"event": "stop"}))
            await read_until_closed(first)
        await h.wait_ended()
        assert [e["call_id"] for e in h.ended] == [admitted["call_id"]]
        # The place is given back: the next browser call is admitted.
        async with connect(socket_url(h)) as third:
            assert (await start(third))["call_id"] != admitted["call_id"]
