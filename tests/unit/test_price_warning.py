"""A startup warning when a realtime model has no calibrated price (its cost would be a guess)."""

from __future__ import annotations

import logging

import pytest

from getpatter import Patter
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import UsageRecorded
from getpatter.carriers.twilio.config import Twilio
from getpatter.engines.openai_realtime import OpenAIRealtime
from getpatter.metrics.collector import MetricsCollector
from getpatter.metrics.pricing import has_calibrated_price, merge_pricing

NUMBER = "+15550002222"


def test_which_models_have_a_calibrated_price() -> None:
    table = merge_pricing()
    for model in (
        "gpt-4o-mini-realtime-preview",
        "gpt-realtime",
        "gpt-realtime-mini",
        "gpt-realtime-2025-08-28",
    ):
        assert has_calibrated_price(table, "openai_realtime", model), model
    for model in ("gpt-realtime-9", "gpt-realtime-mini-turbo", "my-model"):
        assert not has_calibrated_price(table, "openai_realtime", model), model
    mine = merge_pricing({"openai_realtime": {"models": {"gpt-realtime-9": {"audio_input_per_token": 1e-5}}}})
    assert has_calibrated_price(mine, "openai_realtime", "gpt-realtime-9")
    every = merge_pricing({"openai_realtime": {"audio_output_per_token": 1e-4}})  # applies to all models
    assert has_calibrated_price(every, "openai_realtime", "my-model")


def _serve(model: str, pricing: dict[str, object] | None = None) -> None:
    phone = Patter(
        carrier=Twilio("AC" + "0" * 32, "token"),
        phone_number=NUMBER,
        webhook_url="agent.example.test",
        pricing=pricing,
    )
    agent = phone.agent("Hi.", engine=OpenAIRealtime(api_key="sk-test", model=model))
    phone.asgi_app(agent)


def test_serving_an_uncalibrated_realtime_model_warns_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="getpatter.metrics"):
        _serve("gpt-realtime-9")
    [warning] = [r for r in caplog.records if "no calibrated price" in r.getMessage()]
    assert "'gpt-realtime-9'" in warning.getMessage() and "pricing=" in warning.getMessage()


@pytest.mark.parametrize(
    ("model", "pricing"),
    [
        ("gpt-realtime", None),
        ("gpt-4o-mini-realtime-preview", None),
        (
            "gpt-realtime-9",
            {"openai_realtime": {"models": {"gpt-realtime-9": {"text_input_per_token": 1e-6}}}},
        ),
    ],
)
def test_a_priced_model_serves_quietly(
    model: str, pricing: dict[str, object] | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="getpatter.metrics"):
        _serve(model, pricing)
    assert "no calibrated price" not in caplog.text


def test_a_per_call_model_is_checked_on_its_first_usage_once(caplog: pytest.LogCaptureFixture) -> None:
    collector = MetricsCollector(merge_pricing())
    bus = EventBus()
    collector.observer(
        bus, CallContext(call_id="c", caller="", callee="", direction="inbound", carrier="twilio")
    )
    with caplog.at_level(logging.WARNING, logger="getpatter.metrics"):
        for _ in range(3):
            bus.emit(UsageRecorded(call_id="c", kind="realtime", provider="openai_realtime", model="gpt-new"))
    assert sum("no calibrated price" in r.getMessage() for r in caplog.records) == 1
