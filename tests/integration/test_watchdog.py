"""The watchdog: a call whose carrier socket goes silent is ended, not kept forever."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.client import connect

from tests.fakes.twilio import new_sid
from tests.integration.harness import call_harness


async def test_a_silent_media_socket_ends_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_MEDIA_TIMEOUT_S", "1")
    async with call_harness() as h:
        sid, stream = new_sid("CA"), new_sid("MZ")
        params = await h.stream_params(sid)
        ws = await connect(f"{h.server.ws_url}/ws/stream/{sid}")
        details = {
            "accountSid": h.twilio.account_sid,
            "streamSid": stream,
            "callSid": sid,
            "tracks": ["inbound"],
            "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        start = {"event": "start", "sequenceNumber": "1", "streamSid": stream, "start": details}
        await ws.send(orjson.dumps(start).decode())
        # ... and then the carrier falls silent: no media, no stop.
        await h.wait_ended(timeout=10)
        await asyncio.sleep(0.2)
        assert len(h.ended) == 1
        assert h.ended[0]["call_id"] == sid and h.ended[0]["reason"] == "no_media"
        await ws.close()
