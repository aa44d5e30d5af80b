"""A whole call built the way Patter's tools and guardrails pages write it: a raw dict webhook tool and a
dict guardrail, through the real server with a fake Twilio, fake vendors and a fake tool endpoint.

Documented facts: the webhook receives a JSON POST with ``tool``, ``arguments``, ``call_id``, ``caller``,
``callee`` and ``attempt``; its JSON answer goes back to the model as the tool result; a guardrail's
``replacement`` is spoken instead of the blocked text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_chat import Reply
from tests.fakes.server import running
from tests.fakes.webhook_tool import FakeWebhookTool, Step
from tests.integration.harness import call_harness


async def _one_turn(h: Any) -> Any:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    return call


async def test_dict_tool_and_dict_guardrail_work_in_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_ALLOW_PRIVATE_WEBHOOKS", "1")  # the fake endpoint is on 127.0.0.1
    hook = FakeWebhookTool([Step(json={"available": True, "party_size": 4})])
    async with running(hook.app) as hook_srv:
        tools = [
            {
                "name": "check_availability",
                "description": "Check if a table is available for a given date and party size.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "date": {"type": "string", "description": "YYYY-MM-DD"},
                        "party_size": {"type": "integer", "description": "Number of guests"},
                    },
                    "required": ["date", "party_size"],
                },
                "webhook_url": hook_srv.http_url + "/reservations/check",
            }
        ]
        guardrails = [
            {
                "name": "No competitors",
                "blocked_terms": ["RivalCorp"],
                "replacement": "We'd love to host you.",
            }
        ]
        async with call_harness(
            utterances=["A table for four on Friday?"],
            replies=[
                Reply(tool_calls=[("check_availability", '{"date": "2026-12-11", "party_size": 4}')]),
                "Yes, we have a table. RivalCorp is full anyway.",
            ],
            agent_kwargs={"tools": tools, "guardrails": guardrails},
        ) as h:
            call = await _one_turn(h)
            await call.hangup()
            await h.wait_ended()

    offered = [t["function"]["name"] for t in h.llm.requests[0]["tools"]]
    assert offered[0] == "check_availability"
    body = hook.requests[0].body
    assert body["tool"] == "check_availability"
    assert body["arguments"] == {"date": "2026-12-11", "party_size": 4}
    assert (body["call_id"], body["attempt"]) == (call.sid, 1)
    assert {"caller", "callee"} <= set(body)
    assert json.loads(h.llm.requests[1]["messages"][-1]["content"]) == {"available": True, "party_size": 4}
    assert not any("rivalcorp" in text.lower() for text in h.tts.texts)
    assert h.tts.texts[-1] == "We'd love to host you."
    assert h.ended[0]["transcript"][-1]["text"].endswith("We'd love to host you.")
