"""Self-test of the fake Twilio media side against a tiny in-test product stand-in.

The stand-in answers the voice webhook with real TwiML and exposes the server end of the media socket, so
the test can send media, marks and clear exactly as the product would and observe the fake's behaviour.
Timing checks are lower bounds or orderings with large margins, never tight wall-clock windows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from getpatter.carriers.base import CarrierEvent, MediaDtmf, MediaProtocolError, MediaStarted, MediaStopped
from getpatter.carriers.twilio import twiml
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.carriers.twilio.rest import TwilioRestClient
from getpatter.carriers.twilio.signature import verify_signature
from tests.fakes.server import Running, running
from tests.fakes.twilio import FakeCall, FakeTwilio, FakeTwilioError, pcm16_16k_to_mulaw_8k, tone_pcm16_16k

PUBLIC = "agent.example.test"


@dataclass
class Side:
    """The server end of one media socket."""

    ws: WebSocket
    codec: TwilioMediaCodec = field(default_factory=TwilioMediaCodec)
    raw: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[float, CarrierEvent]] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, text: str) -> None:
        await self.ws.send_text(text)

    async def media(self, mulaw: bytes) -> None:
        await self.send(self.codec.audio(mulaw))

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: pred() or self.closed.is_set())

        await asyncio.wait_for(wait(), timeout)
        assert pred(), "socket closed before the condition held"

    def marks(self) -> list[str]:
        return [m["mark"]["name"] for m in self.raw if m.get("event") == "mark"]

    def media_payload(self) -> bytes:
        return b"".join(
            base64.b64decode(m["media"]["payload"]) for m in self.raw if m.get("event") == "media"
        )


class Product:
    """Answers the voice webhook with <Connect><Stream> and hands each media socket to the test."""

    def __init__(self, auth_token: str, *, webhook_status: int = 200) -> None:
        self.auth_token = auth_token
        self.webhook_status = webhook_status
        self.webhooks: list[tuple[dict[str, str], bool]] = []
        self.ws_signature_ok: list[bool] = []
        self.sides: asyncio.Queue[Side] = asyncio.Queue()
        self.app = Starlette(
            routes=[
                Route("/webhooks/twilio/voice", self.voice, methods=["POST"]),
                Route("/outbound", self.voice, methods=["POST"]),
                WebSocketRoute("/ws/stream/{call_id}", self.stream),
            ]
        )

    async def voice(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        url = f"https://{PUBLIC}{request.url.path}"
        ok = verify_signature(self.auth_token, url, form, request.headers.get("x-twilio-signature"))
        self.webhooks.append((form, ok))
        if not ok:
            return PlainTextResponse("Invalid signature", status_code=403)
        if self.webhook_status != 200:
            return PlainTextResponse("nope", status_code=self.webhook_status)
        doc = twiml.connect_stream(
            f"wss://{PUBLIC}/ws/stream/{form['CallSid']}", {"caller": form["From"], "x": "a&b"}
        )
        return Response(doc, media_type="text/xml")

    async def stream(self, ws: WebSocket) -> None:
        url = f"wss://{PUBLIC}{ws.url.path}"
        self.ws_signature_ok.append(
            verify_signature(self.auth_token, url, {}, ws.headers.get("x-twilio-signature"))
        )
        await ws.accept()
        side = Side(ws)
        await self.sides.put(side)
        try:
            while True:
                text = await ws.receive_text()
                side.raw.append(json.loads(text))
                try:
                    ev = side.codec.parse(text)
                except MediaProtocolError:
                    ev = None
                if ev is not None:
                    side.events.append((time.monotonic(), ev))
                async with side.changed:
                    side.changed.notify_all()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            side.closed.set()
            async with side.changed:
                side.changed.notify_all()


@dataclass
class World:
    fake: FakeTwilio
    product: Product
    srv: Running
    rest: Running

    async def call(self, **kw: Any) -> tuple[FakeCall, Side]:
        call = await self.fake.start_inbound_call(self.srv.http_url, PUBLIC, **kw)
        side = await asyncio.wait_for(self.product.sides.get(), 5)
        await side.wait_for(lambda: side.codec.stream_sid is not None)
        return call, side


@pytest.fixture
async def world() -> AsyncIterator[World]:
    fake = FakeTwilio()
    product = Product(fake.auth_token)
    async with running(product.app) as srv, running(fake.app) as rest:
        try:
            yield World(fake, product, srv, rest)
        finally:
            await fake.aclose()


async def test_inbound_call_webhook_handshake_and_start(world: World) -> None:
    call, side = await world.call(from_="+15550003333", call_sid="CA" + "12" * 16)
    ((form, ok),) = world.product.webhooks
    assert ok and world.product.ws_signature_ok == [True]
    assert form == {
        "AccountSid": world.fake.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "12" * 16,
        "CallStatus": "ringing",
        "Called": "+15550002222",
        "Caller": "+15550003333",
        "Direction": "inbound",
        "From": "+15550003333",
        "To": "+15550002222",
    }
    connected, start = side.raw[0], side.raw[1]
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["sequenceNumber"] == "1" and re.fullmatch(r"MZ[0-9a-f]{32}", start["streamSid"])
    assert start["start"] == {
        "accountSid": world.fake.account_sid,
        "streamSid": start["streamSid"],
        "callSid": "CA" + "12" * 16,
        "tracks": ["inbound"],
        "customParameters": {"caller": "+15550003333", "x": "a&b"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    assert isinstance(side.events[1][1], MediaStarted)
    assert call.status == "in-progress" and call.custom_params == {"caller": "+15550003333", "x": "a&b"}
    assert world.fake.calls[call.sid] is call and call.stream_url == f"wss://{PUBLIC}/ws/stream/{call.sid}"

    await side.wait_for(lambda: len(side.raw) >= 6)
    media = side.raw[2:6]
    assert [m["event"] for m in media] == ["media"] * 4
    assert [m["sequenceNumber"] for m in media] == ["2", "3", "4", "5"]
    assert [m["media"]["chunk"] for m in media] == ["1", "2", "3", "4"]
    assert [m["media"]["timestamp"] for m in media] == ["0", "20", "40", "60"]
    assert all(m["streamSid"] == start["streamSid"] and m["media"]["track"] == "inbound" for m in media)
    assert all(base64.b64decode(m["media"]["payload"]) == b"\xff" * 160 for m in media)


async def test_caller_speech_dtmf_and_hangup(world: World) -> None:
    call, side = await world.call()
    tone = tone_pcm16_16k(200)
    before = time.monotonic()
    await call.say_tone(200)
    assert len(call.speech_onsets) == 1 and call.speech_onsets[0] >= before
    await call.dtmf("7")
    await side.wait_for(lambda: any(isinstance(e, MediaDtmf) for _, e in side.events))
    # say() returned once its last byte was sent, so the whole utterance precedes the dtmf on the wire.
    assert pcm16_16k_to_mulaw_8k(tone) in side.media_payload()
    dtmf = next(m for m in side.raw if m["event"] == "dtmf")
    assert dtmf["dtmf"] == {"track": "inbound_track", "digit": "7"}
    seqs = [int(m["sequenceNumber"]) for m in side.raw[1:]]
    assert seqs == list(range(1, len(seqs) + 1))

    await call.hangup()
    await side.wait_for(side.closed.is_set)
    assert side.raw[-1]["event"] == "stop"
    assert side.raw[-1]["stop"] == {"accountSid": world.fake.account_sid, "callSid": call.sid}
    assert isinstance(side.events[-1][1], MediaStopped)
    assert call.ended_by == "caller-hangup" and call.status == "completed"
    with pytest.raises(RuntimeError):
        await call.say_tone(100)


async def test_mark_is_echoed_after_its_audio_has_played(world: World) -> None:
    call, side = await world.call()
    await side.media(b"\x00" * 3200)  # 400 ms
    await side.send(side.codec.mark("a"))
    await side.wait_for(lambda: side.marks() == ["a"])
    media_at = next(r.time for r in call.received if r.kind == "media")
    (echo,) = call.marks_echoed
    assert echo.name == "a" and not echo.cleared
    assert echo.time >= media_at + 0.4 - 1e-3
    assert call.played_audio_mulaw() == b"\x00" * 3200 == call.agent_audio_mulaw()
    assert call.playback_queued_ms() == 0
    assert call.protocol_errors == []


async def test_mark_with_nothing_buffered_is_echoed_at_once(world: World) -> None:
    call, side = await world.call()
    await side.send(side.codec.mark("now"))
    await side.media(b"\x01" * 16000)  # 2 s queued behind it
    await side.send(side.codec.mark("later"))
    await side.wait_for(lambda: side.marks() == ["now"])
    assert call.playback_queued_ms() > 1000  # "now" came back long before the buffer drained
    assert call.pending_marks == ["later"]


async def test_clear_drops_unplayed_audio_and_echoes_pending_marks(world: World) -> None:
    call, side = await world.call()
    await side.media(b"\x11" * 16000)  # 2 s
    await side.send(side.codec.mark("m1"))
    await side.media(b"\x22" * 8000)  # 1 s
    await side.send(side.codec.mark("m2"))
    await side.wait_for(lambda: len(call.pending_marks) == 2)
    await asyncio.sleep(max(0.0, call.received[0].time + 0.12 - time.monotonic()))  # let >100 ms play
    await side.send(side.codec.clear())
    await side.wait_for(lambda: side.marks() == ["m1", "m2"])
    assert [(m.name, m.cleared) for m in call.marks_echoed] == [("m1", True), ("m2", True)]
    (clear_at,) = call.clear_times
    assert call.playback_queued_ms() == 0 and call.pending_marks == []
    played = call.played_audio_mulaw()
    assert 800 <= len(played) < 16000 and played == b"\x11" * len(played)
    assert call.agent_audio_mulaw() == b"\x11" * 16000 + b"\x22" * 8000
    media_at = next(r.time for r in call.received if r.kind == "media")
    assert len(played) == int((clear_at - media_at) * 8000)
    # Audio after the clear plays from now on, and its mark is echoed as played.
    await side.media(b"\x33" * 800)
    await side.send(side.codec.mark("m3"))
    await side.wait_for(lambda: side.marks() == ["m1", "m2", "m3"])
    assert call.marks_echoed[-1].name == "m3" and not call.marks_echoed[-1].cleared
    assert call.played_audio_mulaw() == played + b"\x33" * 800


async def test_wait_helpers(world: World) -> None:
    call, side = await world.call()
    with pytest.raises(TimeoutError):
        await call.wait_for_agent_audio(timeout=0.05)
    await side.media(b"\x05" * 2400)  # 300 ms
    first = await call.wait_for_agent_audio(timeout=5)
    assert first == call.received[0].time
    # A segment without its closing mark is still being spoken, however long the gap.
    with pytest.raises(TimeoutError, match="segment open: True"):
        await call.wait_agent_quiet(quiet_ms=50, timeout=0.1)
    await side.send(side.codec.mark("seg-1"))
    await call.wait_agent_quiet(quiet_ms=50, timeout=5)
    assert call.playback_queued_ms() == 0 and call.played_audio_mulaw() == b"\x05" * 2400
    mark = time.monotonic()
    await side.media(b"\x06" * 160)
    assert await call.wait_for_agent_audio(timeout=5, after=mark) > mark
    await side.media(b"\x07" * 80000)  # 10 s
    with pytest.raises(TimeoutError, match="still buffered"):
        await call.wait_agent_quiet(quiet_ms=50, timeout=0.1)


async def test_protocol_violations_are_dropped_and_listed(world: World) -> None:
    call, side = await world.call()
    sid = side.codec.stream_sid
    await side.send(
        json.dumps({"event": "media", "streamSid": "MZ" + "0" * 32, "media": {"payload": "AAAA"}})
    )
    await side.send(
        json.dumps({"event": "media", "streamSid": sid, "media": {"payload": "AAAA", "track": "x"}})
    )
    await side.send(json.dumps({"event": "media", "streamSid": sid, "media": {"payload": "@@@"}}))
    await side.send(json.dumps({"event": "mark", "streamSid": sid}))
    await side.send(json.dumps({"event": "clear", "streamSid": sid, "extra": 1}))
    await side.send(json.dumps({"event": "dance", "streamSid": sid}))
    await side.send("{not json")
    await side.media(b"\xaa" * 8)
    await call.wait_for_agent_audio(timeout=5)
    assert len(call.protocol_errors) == 7
    assert [r.kind for r in call.received] == ["other"] * 7 + ["media"]
    assert call.agent_audio_mulaw() == b"\xaa" * 8 and call.clear_times == [] and call.marks_echoed == []


async def test_rest_hangup_and_transfer_end_the_stream_with_stop(world: World) -> None:
    client = TwilioRestClient(world.fake.account_sid, world.fake.auth_token, base_url=world.rest.http_url)
    try:
        call, side = await world.call()
        await client.hangup(call.sid)
        assert call.ended_by == "rest-completed"
        await call.wait_closed(timeout=5)
        await side.wait_for(side.closed.is_set)
        assert side.raw[-1]["event"] == "stop" and call.status == "completed"
        assert (await client.fetch_call(call.sid))["status"] == "completed"

        call2, side2 = await world.call()
        await client.update_call(call2.sid, twiml=twiml.dial("+15550003333"))
        await side2.wait_for(side2.closed.is_set)
        assert side2.raw[-1]["event"] == "stop"
        assert call2.ended_by == "rest-twiml" and call2.twiml_updates[0].endswith(
            "<Dial>+15550003333</Dial></Response>"
        )
    finally:
        await client.close()


async def test_server_close_and_caller_drop(world: World) -> None:
    call, side = await world.call()
    await side.ws.close(1000)
    await call.wait_closed(timeout=5)
    assert call.ended_by == "server-closed" and call.close_code == 1000
    with pytest.raises(TimeoutError, match="ended"):
        await call.wait_for_agent_audio(timeout=5)

    call2, side2 = await world.call()
    await call2.drop()
    await side2.wait_for(side2.closed.is_set)
    assert call2.ended_by == "caller-drop"
    assert all(m["event"] != "stop" for m in side2.raw)


async def test_outbound_call_answered_with_twiml_and_with_url(world: World) -> None:
    client = TwilioRestClient(world.fake.account_sid, world.fake.auth_token, base_url=world.rest.http_url)
    try:
        doc = twiml.connect_stream(f"wss://{PUBLIC}/ws/stream/outbound", {"k": "v"})
        sid = (await client.create_call("+15550001111", "+15550002222", twiml=doc))["sid"]
        call = await world.fake.answer_call(sid, world.srv.http_url, PUBLIC)
        side = await asyncio.wait_for(world.product.sides.get(), 5)
        await side.wait_for(lambda: side.codec.stream_sid is not None)
        assert call.custom_params == {"k": "v"} and call.direction == "outbound-api"
        assert side.codec.call_sid == sid

        sid2 = (await client.create_call("+15550001111", "+15550002222", url=f"https://{PUBLIC}/outbound"))[
            "sid"
        ]
        call2 = await world.fake.answer_call(sid2, world.srv.http_url, PUBLIC)
        form, ok = world.product.webhooks[-1]
        assert ok and form["Direction"] == "outbound-api" and form["CallStatus"] == "in-progress"
        assert form["CallSid"] == sid2 and call2.connected
        resp = await world.fake.send_status_callback(
            sid2, world.srv.http_url, PUBLIC, "completed", sequence_number=3
        )
        assert resp.status_code == 404  # the stand-in has no status route; the request was still sent
    finally:
        await client.close()


async def test_forged_and_refused_webhooks(world: World) -> None:
    resp = await world.fake.post_voice_webhook(world.srv.http_url, PUBLIC, sign=False)
    assert resp.status_code == 403
    resp = await world.fake.post_voice_webhook(
        world.srv.http_url, PUBLIC, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    )
    assert resp.status_code == 403
    resp = await world.fake.post_voice_webhook(world.srv.http_url, "other.host")  # signed for the wrong URL
    assert resp.status_code == 403
    assert [ok for _, ok in world.product.webhooks] == [False, False, False]
    world.product.webhook_status = 500
    with pytest.raises(FakeTwilioError, match="HTTP 500"):
        await world.fake.start_inbound_call(world.srv.http_url, PUBLIC)
