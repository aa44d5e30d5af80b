"""Telnyx webhook route branches that whole-call tests cannot reach (config forbids strict mode without a
key, so the route's own guard is checked on a hand-built state)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from getpatter import Patter
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.errors import PatterConfigError
from getpatter.server.app import create_app
from getpatter.server.build import build_state
from getpatter.server.state import ServerState
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS

PATH = "/webhooks/telnyx/voice"


def _state(public_key: str = "", *, strict: bool = False) -> ServerState:
    # Nothing here may reach a real API: the REST root is a closed local port.
    carrier = Telnyx(
        api_key="KEYsecret",
        connection_id="123",
        public_key=public_key,
        allow_unsigned_webhooks=not public_key,
        base_url="http://127.0.0.1:9",
    )
    if strict:  # a state the config refuses to build (strict without a key), to test the route's guard
        object.__setattr__(carrier, "strict_signatures", True)
    phone = Patter(carrier=carrier, phone_number="+15550002222", webhook_url="agent.example.test")
    agent = phone.agent("hi", stt=DeepgramSTT(api_key="dg"), tts=ElevenLabsTTS(api_key="el"))
    return build_state(carrier=carrier, webhook_host="agent.example.test", agent=agent)


def _event(event_type: str, **payload: object) -> bytes:
    body = {"data": {"event_type": event_type, "id": "e1", "payload": {"call_control_id": "v3:a", **payload}}}
    return json.dumps(body).encode()


async def _post(state: ServerState, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(PATH, content=body, headers={"content-type": "application/json"})


async def test_strict_mode_without_a_key_refuses_everything() -> None:
    state = _state(strict=True)
    assert (await _post(state, _event("call.hangup"))).status_code == 403


async def test_no_key_is_allowed_only_explicitly_and_warned_at_every_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="getpatter.server"):
        states = [_state(), _state()]
    warnings = [r for r in caplog.records if "WITHOUT signature verification" in r.getMessage()]
    assert len(warnings) == 2, "one warning per start"
    transport = httpx.ASGITransport(app=create_app(states[0]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for event_id in ("a", "b"):
            body = json.loads(_event("call.hangup", hangup_cause="normal_clearing"))
            body["data"]["id"] = event_id
            assert (await client.post(PATH, content=json.dumps(body))).status_code == 200
    assert "KEYsecret" not in caplog.text


def test_no_key_without_allow_unsigned_refuses_to_build_the_server() -> None:
    carrier = Telnyx(api_key="KEYsecret", connection_id="123")
    phone = Patter(carrier=carrier, phone_number="+15550002222", webhook_url="agent.example.test")
    agent = phone.agent("hi", stt=DeepgramSTT(api_key="dg"), tts=ElevenLabsTTS(api_key="el"))
    with pytest.raises(PatterConfigError, match="allow_unsigned_webhooks=True") as info:
        phone.asgi_app(agent, on_message=lambda event: "ok")
    assert "TELNYX_PUBLIC_KEY" in str(info.value) and "KEYsecret" not in str(info.value)
    with pytest.raises(TypeError, match="allow_unsigned_webhooks"):
        Telnyx(api_key="K", connection_id="c", allow_unsigned_webhooks="yes")  # type: ignore[arg-type]


async def test_oversized_and_unknown_events() -> None:
    state = _state()
    assert (await _post(state, b"{" + b" " * (256 * 1024) + b"}")).status_code == 413
    assert (await _post(state, _event("call.machine.detection.ended", result="human"))).status_code == 200
    assert (await _post(state, _event("call.initiated", call_control_id="has space"))).status_code == 400
    # An outgoing call.initiated needs no answer (and there is no REST client here to send one).
    assert (await _post(state, _event("call.initiated", direction="outgoing"))).status_code == 200
