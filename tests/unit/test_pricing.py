"""Price table, overrides and cost formulas (API.md D.2-D.4)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from getpatter.errors import PatterConfigError
from getpatter.metrics.pricing import (
    DEFAULT_PRICING,
    PRICING_LAST_UPDATED,
    PRICING_VERSION,
    PricingUnit,
    calculate_llm_cost,
    calculate_realtime_cost,
    calculate_stt_cost,
    calculate_telephony_cost,
    calculate_tts_cost,
    merge_pricing,
    resolve_model_pricing,
)

M = 1_000_000
PROVIDER_IDS = [
    "deepgram", "whisper", "openai_transcribe", "assemblyai", "cartesia_stt", "soniox", "speechmatics",
    "elevenlabs", "elevenlabs_ws", "openai_tts", "openai_tts_hd", "cartesia_tts", "rime", "lmnt", "inworld",
    "openai_realtime", "twilio", "telnyx",
]  # fmt: skip


def test_every_documented_provider_has_a_priced_entry() -> None:
    for provider in PROVIDER_IDS:
        entry = DEFAULT_PRICING[provider]
        assert entry["unit"] in {u.value for u in PricingUnit}, provider
        if entry["unit"] != "token":
            assert entry["price"] > 0, provider


@pytest.mark.parametrize(
    ("provider", "price"),
    [
        ("deepgram", 0.0077),
        ("whisper", 0.006),
        ("assemblyai", 0.0025),
        ("cartesia_stt", 0.0025),
        ("soniox", 0.002),
        ("speechmatics", 0.0173),
        ("elevenlabs", 0.06),
        ("openai_tts", 0.015),
        ("openai_tts_hd", 0.030),
        ("cartesia_tts", 0.030),
        ("rime", 0.030),
        ("lmnt", 0.050),
        ("twilio", 0.0085),
        ("telnyx", 0.007),
    ],
)
def test_docs_default_prices(provider: str, price: float) -> None:
    assert DEFAULT_PRICING[provider]["price"] == price


def test_realtime_default_rates_and_twilio_round_up() -> None:
    rt = DEFAULT_PRICING["openai_realtime"]
    assert rt["audio_input_per_token"] * M == pytest.approx(10.0)
    assert rt["audio_output_per_token"] * M == pytest.approx(20.0)
    assert rt["text_input_per_token"] * M == pytest.approx(0.60)
    assert rt["text_output_per_token"] * M == pytest.approx(2.40)
    assert rt["cached_audio_input_per_token"] * M == pytest.approx(0.30)
    assert rt["cached_text_input_per_token"] * M == pytest.approx(0.06)
    assert DEFAULT_PRICING["twilio"]["round_up"] is True
    assert not DEFAULT_PRICING["telnyx"].get("round_up", False)


def test_version_constants() -> None:
    assert PRICING_VERSION and PRICING_LAST_UPDATED.count("-") == 2
    assert str(PricingUnit.THOUSAND_CHARS) == "1k_chars"


# --- merge_pricing


def test_merge_without_overrides_is_a_deep_copy() -> None:
    before = copy.deepcopy(DEFAULT_PRICING)
    table = merge_pricing(None)
    assert table == DEFAULT_PRICING
    table["deepgram"]["models"]["nova-2"]["price"] = 9.0
    assert before == DEFAULT_PRICING


def test_a_provider_level_override_beats_every_built_in_model_row() -> None:
    table = merge_pricing({"deepgram": {"price": 0.005}})
    assert table["deepgram"]["price"] == 0.005
    assert table["deepgram"]["unit"] == "minute"  # untouched field kept
    for model in ("nova-3", "nova-2", "nova-3-multilingual", None):
        assert resolve_model_pricing(table, "deepgram", model)["price"] == 0.005
    assert DEFAULT_PRICING["deepgram"]["price"] == 0.0077  # defaults not mutated
    assert DEFAULT_PRICING["deepgram"]["models"]["nova-2"]["price"] == 0.0058


def test_user_model_rows_beat_the_users_provider_level_price() -> None:
    table = merge_pricing({"deepgram": {"price": 0.005, "models": {"nova-2": {"price": 0.001}}}})
    assert resolve_model_pricing(table, "deepgram", "nova-2")["price"] == 0.001
    assert resolve_model_pricing(table, "deepgram", "nova-3")["price"] == 0.005


def test_a_per_token_realtime_override_applies_to_every_realtime_model() -> None:
    table = merge_pricing({"openai_realtime": {"audio_output_per_token": 1e-4}})
    for model in ("gpt-realtime", "gpt-realtime-mini", "gpt-4o-mini-realtime-preview"):
        entry = resolve_model_pricing(table, "openai_realtime", model)
        assert entry["audio_output_per_token"] == 1e-4
    # Fields the user did not override keep each model's own built-in rate.
    full = resolve_model_pricing(table, "openai_realtime", "gpt-realtime")
    assert full["audio_input_per_token"] * M == pytest.approx(32.0)


def test_openai_transcribe_override_reaches_the_mini_model() -> None:
    table = merge_pricing({"openai_transcribe": {"price": 0.01}})
    assert calculate_stt_cost(table, "openai_transcribe", 60.0, "gpt-4o-mini-transcribe") == 0.01


def test_merge_models_per_model() -> None:
    table = merge_pricing(
        {
            "openai_realtime": {
                "models": {
                    "gpt-realtime": {"audio_output_per_token": 1e-5},
                    "my-model": {"text_input_per_token": 1e-6},
                }
            }
        }
    )
    models = table["openai_realtime"]["models"]
    assert models["gpt-realtime"]["audio_output_per_token"] == 1e-5
    # Other fields of the same model and other models survive.
    assert models["gpt-realtime"]["audio_input_per_token"] * M == pytest.approx(32.0)
    assert "gpt-realtime-mini" in models
    assert models["my-model"] == {"text_input_per_token": 1e-6}
    assert table["openai_realtime"]["audio_input_per_token"] * M == pytest.approx(10.0)


def test_merge_adds_unknown_provider() -> None:
    table = merge_pricing({"acme_stt": {"unit": "minute", "price": 0.01}})
    assert table["acme_stt"] == {"unit": "minute", "price": 0.01}
    assert calculate_stt_cost(table, "acme_stt", 120) == pytest.approx(0.02)


@pytest.mark.parametrize("overrides", [["deepgram"], "deepgram", 3])
def test_merge_non_dict_overrides(overrides: Any) -> None:
    with pytest.raises(PatterConfigError, match="pricing"):
        merge_pricing(overrides)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"deepgram": 0.005}, "pricing['deepgram']"),
        ({"deepgram": {"prize": 0.005}}, "'prize'"),
        ({"deepgram": {"price": -1}}, "non-negative"),
        ({"deepgram": {"price": "0.005"}}, "non-negative"),
        ({"deepgram": {"price": True}}, "non-negative"),
        ({"deepgram": {"unit": "second"}}, "unit"),
        ({"twilio": {"round_up": "yes"}}, "round_up"),
        ({"deepgram": {"models": ["nova"]}}, "models"),
        ({"deepgram": {"models": {"nova": {"models": {}}}}}, "'models'"),
        ({1: {"price": 1.0}}, "provider id"),
    ],
)
def test_merge_rejects_bad_entries(overrides: Any, needle: str) -> None:
    with pytest.raises(PatterConfigError, match="pricing") as info:
        merge_pricing(overrides)
    assert needle in str(info.value)


# --- model resolution


def test_resolve_exact_then_longest_prefix_then_defaults() -> None:
    table = merge_pricing(
        {"p": {"unit": "minute", "price": 1.0, "models": {"a": {"price": 2.0}, "ab": {"price": 3.0}}}}
    )
    assert resolve_model_pricing(table, "p", "a")["price"] == 2.0
    assert resolve_model_pricing(table, "p", "ab")["price"] == 3.0
    assert resolve_model_pricing(table, "p", "abc-2025")["price"] == 3.0  # longest prefix, not "a"
    assert resolve_model_pricing(table, "p", "a-2025")["price"] == 2.0
    assert resolve_model_pricing(table, "p", "zzz")["price"] == 1.0
    assert resolve_model_pricing(table, "p", None) == {"unit": "minute", "price": 1.0}
    assert "models" not in resolve_model_pricing(table, "p", "a")
    assert resolve_model_pricing(table, "nope", "a") == {}


def test_resolve_realtime_snapshots() -> None:
    table = merge_pricing(None)
    mini = resolve_model_pricing(table, "openai_realtime", "gpt-realtime-mini-2025-10-06")
    full = resolve_model_pricing(table, "openai_realtime", "gpt-realtime-2025-08-28")
    assert mini["audio_input_per_token"] * M == pytest.approx(10.0)
    assert full["audio_input_per_token"] * M == pytest.approx(32.0)


# --- STT / TTS / telephony


def test_stt_cost() -> None:
    table = merge_pricing(None)
    assert calculate_stt_cost(table, "deepgram", 60) == pytest.approx(0.0077)
    assert calculate_stt_cost(table, "deepgram", 90, model="nova-2-phonecall") == pytest.approx(0.0087)
    assert calculate_stt_cost(table, "whisper", 30) == pytest.approx(0.003)
    assert calculate_stt_cost(table, "unknown", 60) == 0.0
    assert calculate_stt_cost(table, "deepgram", -5) == 0.0


def test_tts_cost() -> None:
    table = merge_pricing(None)
    assert calculate_tts_cost(table, "elevenlabs", 1500) == pytest.approx(0.09)
    assert calculate_tts_cost(table, "openai_tts", 1000, model="tts-1-hd") == pytest.approx(0.03)
    assert calculate_tts_cost(table, "openai_tts", 1000, model="tts-1") == pytest.approx(0.015)


def test_missing_or_mismatched_unit_costs_zero() -> None:
    table = merge_pricing({"nounit": {"price": 1.0}})
    assert calculate_stt_cost(table, "nounit", 600) == 0.0
    assert calculate_tts_cost(table, "nounit", 5000) == 0.0
    assert calculate_telephony_cost(table, "nounit", 600) == 0.0
    assert calculate_tts_cost(table, "deepgram", 5000) == 0.0  # a per-minute entry has no char price


def test_telephony_twilio_rounds_up_whole_minutes() -> None:
    table = merge_pricing(None)
    assert calculate_telephony_cost(table, "twilio", 61) == pytest.approx(2 * 0.0085)
    assert calculate_telephony_cost(table, "twilio", 60) == pytest.approx(0.0085)
    assert calculate_telephony_cost(table, "twilio", 1) == pytest.approx(0.0085)
    assert calculate_telephony_cost(table, "twilio", 0) == 0.0


def test_telephony_telnyx_fractional() -> None:
    table = merge_pricing(None)
    assert calculate_telephony_cost(table, "telnyx", 90) == pytest.approx(1.5 * 0.007)


def test_costs_rounded_to_six_places() -> None:
    table = merge_pricing({"p": {"unit": "minute", "price": 0.0000001}})
    assert calculate_stt_cost(table, "p", 60) == 0.0
    assert calculate_stt_cost(table, "deepgram", 7) == round(7 / 60 * 0.0077, 6)


# --- LLM


def test_llm_cost_known_models() -> None:
    table = merge_pricing(None)
    assert calculate_llm_cost(table, "openai", "gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert calculate_llm_cost(table, "openai", "gpt-4o-mini-2024-07-18", 2000, 500) == pytest.approx(
        (2000 * 0.15 + 500 * 0.60) / M, abs=1e-6
    )
    cost = calculate_llm_cost(table, "anthropic", "claude-haiku-4-5-20251001", 1000, 200, 4000, 1000)
    assert cost == pytest.approx((1000 * 1.0 + 200 * 5.0 + 4000 * 0.10 + 1000 * 1.25) / M, abs=1e-6)
    for provider, model in [
        ("openai", "gpt-4.1-mini"),
        ("groq", "llama-3.3-70b-versatile"),
        ("cerebras", "gpt-oss-120b"),
        ("google", "gemini-2.5-flash"),
    ]:
        assert calculate_llm_cost(table, provider, model, M, M) > 0


def test_llm_cache_tokens_default_to_input_rate() -> None:
    table = merge_pricing({"x": {"unit": "token", "models": {"m": {"input_per_million": 2.0}}}})
    assert calculate_llm_cost(table, "x", "m", 0, 0, cache_read_tokens=M, cache_write_tokens=M) == 4.0


def test_llm_unknown_model_or_provider_costs_zero() -> None:
    table = merge_pricing(None)
    assert calculate_llm_cost(table, "openai", "gpt-9-ultra", M, M) == 0.0
    assert calculate_llm_cost(table, "nobody", "gpt-4o-mini", M, M) == 0.0


# --- Realtime (D.2 formula)

RATES = {
    "unit": "token",
    "audio_input_per_token": 10.0,
    "audio_output_per_token": 20.0,
    "text_input_per_token": 1.0,
    "text_output_per_token": 2.0,
    "cached_audio_input_per_token": 0.5,
    "cached_text_input_per_token": 0.1,
}


def _rt_table(**fields: Any) -> Any:
    # Rates per token far above real ones keep the arithmetic exact at 6 dp.
    return merge_pricing({"openai_realtime": {**RATES, **fields, "models": {}}})


def test_realtime_with_cached_details() -> None:
    usage = {
        "input_token_details": {
            "text_tokens": 120,
            "audio_tokens": 180,
            "cached_tokens": 64,
            "cached_tokens_details": {"text_tokens": 64, "audio_tokens": 0},
        },
        "output_token_details": {"text_tokens": 22, "audio_tokens": 90},
    }
    cost, savings = calculate_realtime_cost(_rt_table(), "custom-model", usage)
    expected = 180 * 10 + (120 - 64) * 1.0 + 64 * 0.1 + 90 * 20 + 22 * 2
    assert cost == pytest.approx(expected)
    assert savings == pytest.approx(64 * (1.0 - 0.1))


def test_realtime_pro_rates_cached_tokens_without_details() -> None:
    usage = {
        "input_token_details": {"text_tokens": 100, "audio_tokens": 300, "cached_tokens": 40},
        "output_token_details": {"text_tokens": 0, "audio_tokens": 0},
    }
    cost, savings = calculate_realtime_cost(_rt_table(), "m", usage)
    cached_audio, cached_text = 30.0, 10.0  # 40 split 3:1 like the audio:text input
    expected = (300 - cached_audio) * 10 + cached_audio * 0.5 + (100 - cached_text) * 1.0 + cached_text * 0.1
    assert cost == pytest.approx(expected)
    assert savings == pytest.approx(cached_audio * 9.5 + cached_text * 0.9)


def test_realtime_no_cache_and_real_default_rates() -> None:
    usage = {
        "input_tokens": 1000,
        "input_token_details": {"audio_tokens": 1000, "text_tokens": 0},
        "output_token_details": {"audio_tokens": 1000, "text_tokens": 0},
    }
    cost, savings = calculate_realtime_cost(merge_pricing(None), "gpt-4o-mini-realtime-preview", usage)
    assert cost == pytest.approx(1000 * 10 / M + 1000 * 20 / M)
    assert savings == 0.0


def test_realtime_clamps_at_zero() -> None:
    # Inconsistent usage (more cached audio than audio input) would give a negative total.
    usage = {"input_token_details": {"audio_tokens": 0, "cached_tokens_details": {"audio_tokens": 10}}}
    cost, _ = calculate_realtime_cost(_rt_table(), "m", usage)
    assert (0 - 10) * 10 + 10 * 0.5 < 0
    assert cost == 0.0


def test_realtime_garbage_usage_and_missing_unit() -> None:
    assert calculate_realtime_cost(_rt_table(), "m", {}) == (0.0, 0.0)
    assert calculate_realtime_cost(_rt_table(), "m", {"input_token_details": "x"}) == (0.0, 0.0)
    table = merge_pricing(None)
    del table["openai_realtime"]["unit"]
    usage = {"output_token_details": {"audio_tokens": 1000}}
    assert calculate_realtime_cost(table, "gpt-realtime", usage) == (0.0, 0.0)


def test_realtime_full_model_costs_more_than_mini() -> None:
    usage = {"input_token_details": {"audio_tokens": 1000}, "output_token_details": {"audio_tokens": 1000}}
    table = merge_pricing(None)
    mini, _ = calculate_realtime_cost(table, "gpt-4o-mini-realtime-preview", usage)
    full, _ = calculate_realtime_cost(table, "gpt-realtime", usage)
    assert full > 3 * mini
