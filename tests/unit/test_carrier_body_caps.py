"""Each carrier states its webhook body cap (``Carrier.body_caps()``) and the server enforces it while the
body streams in, before the route reads it: the middleware's 413, not the route's own late check."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute

from getpatter import Patter
from getpatter._body_limit import DEFAULT_MAX_BODY_BYTES
from getpatter.carriers.base import CarrierConfig
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.server.app import create_app
from getpatter.server.build import build_state
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS

CONFIGS: list[CarrierConfig] = [
    Twilio("AC" + "1" * 32, "token-x", base_url="http://127.0.0.1:9"),
    Telnyx(api_key="KEYx", connection_id="1", allow_unsigned_webhooks=True, base_url="http://127.0.0.1:9"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.kind)
async def test_every_webhook_route_is_capped_below_the_default(config: CarrierConfig) -> None:
    phone = Patter(carrier=config, phone_number="+15550002222", webhook_url="agent.example.test")
    agent = phone.agent("hi", stt=DeepgramSTT(api_key="dg"), tts=ElevenLabsTTS(api_key="el"))
    state = build_state(carrier=config, webhook_host="agent.example.test", agent=agent)
    caps = state.carrier.body_caps()
    assert caps and all(0 < cap < DEFAULT_MAX_BODY_BYTES for cap in caps.values())
    app = create_app(state)
    posts = [r.path for r in app.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    assert posts
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in posts:
            cap = next(cap for prefix, cap in caps.items() if path.startswith(prefix))
            response = await client.post(path, content=b"x" * (cap + 1))
            assert (response.status_code, response.text) == (413, "Payload Too Large"), path
    await state.carrier.close()
