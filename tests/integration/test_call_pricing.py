"""A whole call's cost under ``Patter(pricing=...)`` overrides, checked against a hand calculation.

The usage each provider reported is recorded off the call's bus; the expected bill is then worked out
here with the override prices written as plain numbers (no pricing function is reused), so a built-in
row that shadows an override, or a model priced as the wrong one, shows up as a different total.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import CallStarted, UsageRecorded
from getpatter.metrics.model import CallMetrics
from tests.integration.harness import call_harness
from tests.integration.test_realtime_call import realtime_harness

M = 1_000_000
# Deliberately far from every built-in price, so a built-in row winning cannot go unnoticed.
PIPELINE_PRICES: dict[str, Any] = {
    "deepgram": {"price": 0.60},  # USD/minute, for every Deepgram model (nova-3 has a built-in row)
    "elevenlabs": {"price": 2.00},  # USD/1k characters
    "openai": {  # USD/1M tokens, for every OpenAI chat model (gpt-4o-mini has a built-in row)
        "input_per_million": 100.0,
        "output_per_million": 300.0,
        "cache_read_per_million": 10.0,
    },
    "twilio": {"price": 0.50},  # USD/started minute
}


def _recorder(usage: list[UsageRecorded], started: list[CallStarted]) -> Any:
    def observe(bus: EventBus, ctx: CallContext) -> None:
        bus.on(UsageRecorded, usage.append)
        bus.on(CallStarted, started.append)

    return observe


async def test_pipeline_call_cost_under_overrides_matches_a_hand_calculation() -> None:
    usage: list[UsageRecorded] = []
    started: list[CallStarted] = []
    async with call_harness(
        utterances=["What are your opening hours?"],
        replies=["Nine to five."],
        observers=[_recorder(usage, started)],
        patter_kwargs={"pricing": PIPELINE_PRICES},
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    metrics = h.ended[0]["metrics"]
    assert isinstance(metrics, CallMetrics)
    stt = [u for u in usage if u.kind == "stt"]
    tts = [u for u in usage if u.kind == "tts"]
    llm = [u for u in usage if u.kind == "llm"]
    assert stt and tts and llm, "every provider must have reported usage"
    assert {u.model for u in stt} == {"nova-3"} and {u.model for u in llm} == {"gpt-4o-mini"}

    stt_cost = sum(u.audio_seconds for u in stt) / 60 * 0.60
    tts_cost = sum(u.characters for u in tts) / 1000 * 2.00
    llm_cost = (
        sum(u.input_tokens * 100.0 + u.output_tokens * 300.0 + u.cache_read_tokens * 10.0 for u in llm) / M
    )
    telephony = math.ceil(metrics.duration_seconds / 60) * 0.50
    assert metrics.cost.stt == round(stt_cost, 6)
    assert metrics.cost.tts == round(tts_cost, 6)
    assert metrics.cost.llm == round(llm_cost, 6)
    assert metrics.cost.telephony == round(telephony, 6)
    assert abs(metrics.cost.total - (stt_cost + tts_cost + llm_cost + telephony)) < 1e-5

    # The models named in metrics, the call log's agent and the dashboard are the pipeline's, not the
    # unused realtime defaults (gpt-4o-mini-realtime-preview / alloy).
    assert (metrics.stt_model, metrics.llm_model, metrics.tts_model) == (
        "nova-3",
        "gpt-4o-mini",
        tts[0].model,
    )
    agent = started[0].agent
    assert agent["provider"] == "pipeline"
    assert (agent["stt"], agent["stt_model"]) == ("deepgram", "nova-3")
    assert (agent["llm"], agent["llm_model"], agent["model"]) == ("openai", "gpt-4o-mini", "gpt-4o-mini")
    assert agent["tts"] == "elevenlabs" and agent["voice"] != "alloy" and agent["voice"]
    stored = h.phone.metrics_store.get_call(call.sid)
    assert stored is not None and stored["metrics"]["cost"]["total"] == metrics.cost.total


REALTIME_FULL = {  # USD per token for gpt-realtime, all far from the built-in rows
    "audio_input_per_token": 50.0 / M,
    "audio_output_per_token": 90.0 / M,
    "text_input_per_token": 7.0 / M,
    "text_output_per_token": 21.0 / M,
    "cached_audio_input_per_token": 1.0 / M,
    "cached_text_input_per_token": 0.5 / M,
}


def _realtime_by_hand(details: dict[str, Any], rates: dict[str, float]) -> float:
    inp, out = details["input_token_details"], details["output_token_details"]
    cached = inp.get("cached_tokens_details") or {}
    c_audio, c_text = cached.get("audio_tokens", 0), cached.get("text_tokens", 0)
    return (
        (inp["audio_tokens"] - c_audio) * rates["audio_input_per_token"]
        + c_audio * rates["cached_audio_input_per_token"]
        + (inp["text_tokens"] - c_text) * rates["text_input_per_token"]
        + c_text * rates["cached_text_input_per_token"]
        + out["audio_tokens"] * rates["audio_output_per_token"]
        + out["text_tokens"] * rates["text_output_per_token"]
    )


@pytest.mark.parametrize(
    "how",
    [
        {"agent_kwargs": {"model": "gpt-realtime"}},
        {"serve_kwargs": {"on_call_start": lambda data: {"model": "gpt-realtime"}}},
    ],
    ids=["agent-model", "per-call-override"],
)
async def test_realtime_call_is_priced_as_the_model_it_connected_with(how: dict[str, Any]) -> None:
    """``engine=OpenAIRealtime()`` (default: the mini model) with ``model="gpt-realtime"`` (on the agent
    or for one call) connects with gpt-realtime, so it must be priced and named as gpt-realtime, with the
    user's row for it."""
    usage: list[UsageRecorded] = []
    started: list[CallStarted] = []
    async with realtime_harness(
        ["Hello, thanks for calling.", "We open at nine."],
        ["When do you open?"],
        **how,
        patter_kwargs={"pricing": {"openai_realtime": {"models": {"gpt-realtime": REALTIME_FULL}}}},
        observers=(_recorder(usage, started),),
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(600)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.hangup()
        await h.wait_ended()

    assert h.engine.connections[0].query["model"] == "gpt-realtime"
    metrics = h.ended[0]["metrics"]
    assert isinstance(metrics, CallMetrics)
    realtime = [u for u in usage if u.kind == "realtime"]
    assert realtime and {u.model for u in realtime} == {"gpt-realtime"}
    expected = sum(_realtime_by_hand(u.details, REALTIME_FULL) for u in realtime)
    assert expected > 0
    assert metrics.cost.llm == round(expected, 6)
    assert metrics.llm_model == "gpt-realtime"
    assert started[0].agent["model"] == "gpt-realtime" and started[0].agent["engine"] == "OpenAIRealtime"
