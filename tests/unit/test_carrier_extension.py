"""A carrier is one object: a carrier getpatter has never heard of plugs in through ``CarrierConfig`` and
``Carrier`` alone, and the server, ``phone.call()`` and the outbound-call book drive it only through
that interface (routes, dial, ring limits, status callbacks, recordings, close)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response

from getpatter import Patter
from getpatter.call.progress import CallStatusChanged, RecordingSaved
from getpatter.carriers.base import Carrier, CarrierConfig, CarrierControl, Dial, MediaCodec
from getpatter.carriers.host import CarrierHost
from getpatter.errors import PatterConfigError
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS

HOST = "agent.example.test"


class LoopCarrier(Carrier):
    """A made-up carrier: dials by recording the request, reports progress on its own JSON webhook."""

    kind = "loop"
    ring_limits = (2, 60)

    def __init__(self) -> None:
        self.dialled: list[tuple[Dial, str]] = []
        self.recording: list[tuple[str, str]] = []
        self.numbers: list[tuple[str, str]] = []
        self.number_set = asyncio.Event()
        self.closed = False

    def add_routes(self, app: FastAPI, host: CarrierHost) -> None:
        @app.post("/webhooks/loop/events")
        async def events(request: Request) -> Response:
            body = await request.json()
            if body["type"] == "status":
                host.outbound.status(body["id"], self.kind, body["status"])
            elif body["type"] == "recording":
                host.recording_saved(body["id"], self.kind, url=body["url"], recording_id="rec-1")
            return Response(status_code=204)

    def codec(self, params: Mapping[str, str] | None = None) -> MediaCodec:
        raise NotImplementedError("this carrier has no media socket")

    def control(self, call_id: str) -> CarrierControl | None:
        return None

    async def dial(self, dial: Dial, webhook_host: str) -> str:
        self.dialled.append((dial, webhook_host))
        return f"loop-{len(self.dialled)}"

    async def start_recording(self, call_id: str, webhook_host: str) -> str:
        self.recording.append((call_id, webhook_host))
        return "rec-1"

    async def configure_number(self, number: str, webhook_host: str) -> None:
        self.numbers.append((number, webhook_host))
        self.number_set.set()

    async def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class Loop(CarrierConfig):
    kind: ClassVar[str] = "loop"
    built: ClassVar[list[LoopCarrier]] = []

    def build_carrier(self) -> LoopCarrier:
        carrier = LoopCarrier()
        Loop.built.append(carrier)
        return carrier


def _phone() -> tuple[Patter, FastAPI]:
    phone = Patter(carrier=Loop(), phone_number="+15550002222", webhook_url=HOST)
    agent = phone.agent("hi", stt=DeepgramSTT(api_key="dg"), tts=ElevenLabsTTS(api_key="el"))
    return phone, phone.asgi_app(agent, on_message=lambda event: "ok", dashboard=False)


async def _post(app: FastAPI, body: dict[str, Any]) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.post("/webhooks/loop/events", json=body)).status_code


async def test_a_new_carrier_is_served_dialled_and_tracked_without_server_changes() -> None:
    phone, app = _phone()
    carrier = Loop.built[-1]
    statuses: list[CallStatusChanged] = []
    recordings: list[RecordingSaved] = []
    phone.events.on(CallStatusChanged, statuses.append)
    phone.events.on(RecordingSaved, recordings.append)

    assert await phone.call("+15550003333", first_message="Hello there", ring_timeout=30) == "loop-1"
    dial, host = carrier.dialled[0]
    assert host == HOST
    assert (dial.to, dial.from_, dial.first_message, dial.ring_timeout) == (
        "+15550003333",
        "+15550002222",
        "Hello there",
        30,
    )
    assert dial.machine_detection is False

    waiting = asyncio.create_task(phone.call("+15550004444", wait=True))
    while len(carrier.dialled) < 2 and not waiting.done():
        await asyncio.sleep(0)
    assert await _post(app, {"type": "status", "id": "loop-2", "status": "completed"}) == 204
    result = await asyncio.wait_for(waiting, 5)
    assert (result.call_id, result.status) == ("loop-2", "completed")
    assert [(e.call_id, e.carrier, e.status) for e in statuses] == [("loop-2", "loop", "completed")]

    assert await _post(app, {"type": "recording", "id": "loop-2", "url": "https://r.example/1"}) == 204
    assert [(r.call_id, r.carrier, r.url) for r in recordings] == [("loop-2", "loop", "https://r.example/1")]


async def test_the_carriers_ring_limits_bound_ring_timeout() -> None:
    phone, _app = _phone()
    with pytest.raises(PatterConfigError, match="between 2 and 60 for loop"):
        await phone.call("+15550003333", ring_timeout=1)
    assert Loop.built[-1].dialled == []


async def test_serve_points_the_number_at_the_server_and_closes_the_carrier() -> None:
    phone = Patter(carrier=Loop(), phone_number="+15550002222", webhook_url=HOST)
    agent = phone.agent("hi", stt=DeepgramSTT(api_key="dg"), tts=ElevenLabsTTS(api_key="el"))
    serving = asyncio.create_task(phone.serve(agent, port=0, on_message=lambda event: "ok", dashboard=False))
    while phone._runner is None and not serving.done():  # serve() creates the runner right away
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.shield(phone.ready), 30)
    carrier = Loop.built[-1]
    await asyncio.wait_for(carrier.number_set.wait(), 30)
    assert carrier.numbers == [("+15550002222", HOST)] and not carrier.closed
    await phone.disconnect()
    await asyncio.wait_for(serving, 30)
    assert carrier.closed
