"""Defaults where getpatter follows Patter's documentation rather than the 0.7 release (the "default"
rows of docs/migrating-from-patter.md), and the forms that need no change at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import getpatter
from getpatter import Patter, Telnyx
from getpatter.settings import Settings
from tests.fakes.twilio import FakeCall, FakeTwilio
from tests.integration.harness import call_harness

CALLEE = "+15550003333"


async def _placed(fake: FakeTwilio, count: int) -> list[FakeCall]:
    async def until() -> list[FakeCall]:
        while True:
            calls = [c for c in fake.calls.values() if c.direction == "outbound-api"]
            if len(calls) >= count:
                return calls
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(until(), 5.0)


async def test_outbound_machine_detection_is_off_unless_asked() -> None:
    async with call_harness() as h:
        await h.phone.call(CALLEE)
        await h.phone.call(CALLEE, machine_detection=True)
        await _placed(h.twilio, 2)
        plain, with_amd = (dict(r.form) for r in h.twilio.requests_to("/Calls.json", "POST"))
        with pytest.raises(ValueError, match=r"is not an E.164 phone number"):
            await h.phone.call("555-0100")
    assert "MachineDetection" not in plain
    assert with_amd["MachineDetection"] == "DetectMessageEnd"
    assert plain["To"] == CALLEE


def test_phone_redaction_defaults_to_mask() -> None:
    assert Settings.from_env({}).redact_phone == "mask"
    assert Settings.from_env({"PATTER_LOG_REDACT_PHONE": "full"}).redact_phone == "full"


def test_documented_provider_defaults() -> None:
    key = {"api_key": "k"}
    assert getpatter.OpenAITTS(**key).model == "tts-1"
    assert getpatter.CartesiaTTS(**key).model == "sonic-2"
    assert getpatter.ElevenLabsWebSocketTTS(**key).voice_id == "21m00Tcm4TlvDq8ikWAM"
    assert getpatter.ElevenLabsTTS(**key).voice_id == "EXAVITQu4vr4xnSDxMaL"
    assert getpatter.OpenAIRealtime(**key).model == "gpt-4o-mini-realtime-preview"
    assert getpatter.DeepgramSTT(**key).model == "nova-3"


def test_telnyx_codec_defaults_to_l16_and_pcmu_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELNYX_API_KEY", "KEY")
    monkeypatch.setenv("TELNYX_CONNECTION_ID", "conn")
    assert Telnyx().stream_codec == "L16"
    assert Telnyx(stream_codec="PCMU").stream_codec == "PCMU"


def test_openai_function_shaped_dict_tool_is_accepted(phone: Patter) -> None:
    spec: dict[str, Any] = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        "webhook_url": "https://api.example.com/weather",
    }
    (made,) = phone.agent(system_prompt="x", tools=[spec]).tools
    assert (made.name, made.transport) == ("get_weather", "webhook")
