"""Provider price table and the cost formulas of API.md D.2-D.4.

The table is plain data keyed by provider id so users can override any price with
``Patter(pricing={...})``. Every price is an estimate in USD; the defaults follow the documented values
(C11), so ``PRICING_VERSION`` says which table a cost figure was computed with.
All cost functions return USD rounded to 6 decimals and never raise for unknown providers or models:
a missing price costs 0.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypedDict, cast

from getpatter.errors import PatterConfigError

PRICING_VERSION = "2026.11-docs"
PRICING_LAST_UPDATED = "2026-11-24"


class PricingUnit(StrEnum):
    """The billing unit of a provider entry. ``StrEnum``, so tables may hold the plain strings."""

    MINUTE = "minute"
    THOUSAND_CHARS = "1k_chars"
    TOKEN = "token"


class ProviderPricing(TypedDict, total=False):
    """One provider's prices (API.md D.3). Every field is optional; overrides are partial entries."""

    unit: str
    price: float
    round_up: bool
    models: dict[str, ProviderPricing]
    # Speech-to-speech (OpenAI Realtime), USD per token.
    audio_input_per_token: float
    audio_output_per_token: float
    text_input_per_token: float
    text_output_per_token: float
    cached_audio_input_per_token: float
    cached_text_input_per_token: float
    # Chat LLMs, USD per 1M tokens (our extension of D.3 for pipeline LLM cost).
    input_per_million: float
    output_per_million: float
    cache_read_per_million: float
    cache_write_per_million: float


PricingTable = dict[str, ProviderPricing]

_M = 1_000_000


def _per_million(rate: float) -> float:
    return rate / _M


_MINI_REALTIME: ProviderPricing = {
    "audio_input_per_token": _per_million(10.0),
    "audio_output_per_token": _per_million(20.0),
    "text_input_per_token": _per_million(0.60),
    "text_output_per_token": _per_million(2.40),
    "cached_audio_input_per_token": _per_million(0.30),
    "cached_text_input_per_token": _per_million(0.06),
}
_FULL_REALTIME: ProviderPricing = {  # gpt-realtime list price; estimate, override if it changes
    "audio_input_per_token": _per_million(32.0),
    "audio_output_per_token": _per_million(64.0),
    "text_input_per_token": _per_million(4.0),
    "text_output_per_token": _per_million(16.0),
    "cached_audio_input_per_token": _per_million(0.40),
    "cached_text_input_per_token": _per_million(0.40),
}


def _llm(
    inp: float, out: float, cache_read: float | None = None, cache_write: float | None = None
) -> ProviderPricing:
    row: ProviderPricing = {"input_per_million": inp, "output_per_million": out}
    if cache_read is not None:
        row["cache_read_per_million"] = cache_read
    if cache_write is not None:
        row["cache_write_per_million"] = cache_write
    return row


DEFAULT_PRICING: PricingTable = {
    # --- STT, USD per minute of audio sent.
    "deepgram": {
        "unit": "minute",
        "price": 0.0077,  # Nova-3 streaming
        "models": {
            "nova-3": {"price": 0.0077},
            "nova-3-multilingual": {"price": 0.0092},
            "nova-2": {"price": 0.0058},
            "nova": {"price": 0.0043},
            "whisper-large": {"price": 0.0048},
            "whisper-medium": {"price": 0.0048},
        },
    },
    "whisper": {"unit": "minute", "price": 0.006},
    # Not in the docs table: OpenAI's list price for gpt-4o-transcribe / -mini-transcribe.
    "openai_transcribe": {
        "unit": "minute",
        "price": 0.006,
        "models": {"gpt-4o-mini-transcribe": {"price": 0.003}},
    },
    "assemblyai": {"unit": "minute", "price": 0.0025},
    "cartesia_stt": {"unit": "minute", "price": 0.0025},  # ink-whisper
    "soniox": {"unit": "minute", "price": 0.002},
    "speechmatics": {"unit": "minute", "price": 0.0173},
    # --- TTS, USD per 1,000 characters synthesized.
    "elevenlabs": {"unit": "1k_chars", "price": 0.06},  # Flash / Turbo v2.5
    "elevenlabs_ws": {"unit": "1k_chars", "price": 0.06},
    "openai_tts": {"unit": "1k_chars", "price": 0.015, "models": {"tts-1-hd": {"price": 0.030}}},
    "openai_tts_hd": {"unit": "1k_chars", "price": 0.030},
    "cartesia_tts": {"unit": "1k_chars", "price": 0.030},  # sonic-2
    "rime": {"unit": "1k_chars", "price": 0.030},
    "lmnt": {"unit": "1k_chars", "price": 0.050},
    "inworld": {"unit": "1k_chars", "price": 0.005},  # not in the docs table; estimate, override
    # --- Speech-to-speech, USD per token. Default row = the mini models (C5: both share one row).
    "openai_realtime": {
        "unit": "token",
        **_MINI_REALTIME,
        "models": {
            "gpt-4o-mini-realtime-preview": _MINI_REALTIME.copy(),
            "gpt-realtime-mini": _MINI_REALTIME.copy(),
            "gpt-realtime": _FULL_REALTIME.copy(),
            "gpt-realtime-2": _FULL_REALTIME.copy(),  # estimate
            "gpt-4o-realtime-preview": {  # estimate, override if it changes
                "audio_input_per_token": _per_million(40.0),
                "audio_output_per_token": _per_million(80.0),
                "text_input_per_token": _per_million(5.0),
                "text_output_per_token": _per_million(20.0),
                "cached_audio_input_per_token": _per_million(2.50),
                "cached_text_input_per_token": _per_million(2.50),
            },
        },
    },
    # --- Pipeline chat LLMs, USD per 1M tokens. All rows are estimates from public list prices at
    # PRICING_LAST_UPDATED; override them for your contract. Unlisted models cost 0.
    "openai": {
        "unit": "token",
        "models": {"gpt-4o-mini": _llm(0.15, 0.60, 0.075), "gpt-4.1-mini": _llm(0.40, 1.60, 0.10)},
    },
    "anthropic": {"unit": "token", "models": {"claude-haiku-4-5": _llm(1.00, 5.00, 0.10, 1.25)}},
    "groq": {"unit": "token", "models": {"llama-3.3-70b-versatile": _llm(0.59, 0.79)}},
    "cerebras": {"unit": "token", "models": {"gpt-oss-120b": _llm(0.35, 0.75)}},
    "google": {"unit": "token", "models": {"gemini-2.5-flash": _llm(0.30, 2.50, 0.075)}},
    # --- Telephony, USD per minute. Twilio bills whole minutes; Telnyx per second.
    "twilio": {"unit": "minute", "price": 0.0085, "round_up": True},  # US inbound local
    "telnyx": {"unit": "minute", "price": 0.007},
}

_NUMBER_FIELDS = frozenset(ProviderPricing.__annotations__) - {"unit", "round_up", "models"}
_UNITS = frozenset(unit.value for unit in PricingUnit)


def _check_entry(entry: object, where: str, allow_models: bool) -> dict[str, Any]:
    """Validate one partial entry so a typo in an override fails loudly instead of costing 0."""
    if not isinstance(entry, Mapping):
        raise PatterConfigError(f"{where} must be a dict of price fields, got {type(entry).__name__}.")
    checked: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "unit":
            if value not in _UNITS:
                raise PatterConfigError(f"{where}['unit']={value!r}: use one of {sorted(_UNITS)}.")
            value = str(value)
        elif key == "round_up":
            if not isinstance(value, bool):
                raise PatterConfigError(f"{where}['round_up'] must be True or False, got {value!r}.")
        elif key == "models" and allow_models:
            if not isinstance(value, Mapping):
                raise PatterConfigError(f"{where}['models'] must be a dict of model id -> price fields.")
            value = {str(m): _check_entry(e, f"{where}['models'][{m!r}]", False) for m, e in value.items()}
        elif key in _NUMBER_FIELDS:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise PatterConfigError(f"{where}[{key!r}] must be a non-negative number, got {value!r}.")
            value = float(value)
        else:
            valid = sorted(_NUMBER_FIELDS | {"unit", "round_up"} | ({"models"} if allow_models else set()))
            raise PatterConfigError(f"{where} has unknown field {key!r}. Fix: use one of {valid}.")
        checked[str(key)] = value
    return checked


def merge_pricing(overrides: Mapping[str, Any] | None = None) -> PricingTable:
    """A fresh table: defaults, with each override entry merged over its provider.

    A user's price beats every built-in row: a provider-level field the override sets (``price``,
    ``audio_input_per_token``...) is removed from the provider's *built-in* model rows, so it applies to
    every model of that provider. Model rows the user gives are merged on top of that, per model (an
    override for one model keeps the other models and the fields of that model it does not mention).
    Unknown providers are added. The defaults are never mutated.
    """
    table: dict[str, dict[str, Any]] = copy.deepcopy(cast(dict[str, dict[str, Any]], DEFAULT_PRICING))
    if overrides is None:
        return cast(PricingTable, table)
    if not isinstance(overrides, Mapping):
        raise PatterConfigError(
            f"pricing must be a dict keyed by provider id, got {type(overrides).__name__}. "
            "Fix: pricing={'deepgram': {'price': 0.005}}."
        )
    for provider, entry in overrides.items():
        if not isinstance(provider, str):
            raise PatterConfigError(f"pricing keys must be provider id strings, got {provider!r}.")
        checked = _check_entry(entry, f"pricing[{provider!r}]", True)
        merged = table.setdefault(provider, {})
        model_overrides = checked.pop("models", None)
        merged.update(checked)
        overridden = checked.keys() & _NUMBER_FIELDS
        for row in (merged.get("models") or {}).values():
            for key in overridden:
                row.pop(key, None)
        if model_overrides:
            models = merged.setdefault("models", {})
            for model_id, model_entry in model_overrides.items():
                models.setdefault(model_id, {}).update(model_entry)
    return cast(PricingTable, table)


def resolve_model_pricing(
    table: Mapping[str, ProviderPricing], provider: str, model: str | None = None
) -> ProviderPricing:
    """The effective entry for ``provider``/``model``: provider fields overlaid with the model row.

    Model lookup: exact id, then the longest listed id that prefixes ``model`` (dated snapshots such as
    ``gpt-4o-mini-2024-07-18``), else the provider's own fields. The result has no ``models`` key.
    """
    entry = table.get(provider)
    if not entry:
        return {}
    base: dict[str, Any] = {k: v for k, v in entry.items() if k != "models"}
    models = entry.get("models") or {}
    if model:
        row = models.get(model)
        if row is None:
            prefixes = [key for key in models if model.startswith(key)]
            row = models[max(prefixes, key=len)] if prefixes else None
        if row is not None:
            base.update(row)
    return cast(ProviderPricing, base)


def has_calibrated_price(table: Mapping[str, ProviderPricing], provider: str, model: str) -> bool:
    """Whether ``model`` of ``provider`` has a price of its own in ``table``: a model row for exactly it
    (or for the model it is a dated snapshot of, ``<row>-YYYY-MM-DD``), or provider-level prices the user
    set (which apply to every model). Otherwise its cost is priced with another model's rates: a guess."""
    entry = table.get(provider) or {}
    models = entry.get("models") or {}
    if any(model == key or re.fullmatch(re.escape(key) + r"-\d{4}-\d{2}-\d{2}", model) for key in models):
        return True
    own = {k: v for k, v in entry.items() if k != "models"}
    default = {k: v for k, v in (DEFAULT_PRICING.get(provider) or {}).items() if k != "models"}
    return bool(own) and own != default


def _num(value: object) -> float:
    """A non-negative count from vendor usage JSON; anything else counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(float(value), 0.0)


def _minutes_cost(entry: ProviderPricing, seconds: float) -> float:
    if entry.get("unit") != PricingUnit.MINUTE:
        return 0.0
    minutes = _num(seconds) / 60.0
    if entry.get("round_up"):
        minutes = float(math.ceil(minutes))
    return round(minutes * entry.get("price", 0.0), 6)


def calculate_stt_cost(
    table: Mapping[str, ProviderPricing], provider: str, audio_seconds: float, model: str | None = None
) -> float:
    """``audio_seconds / 60 * price`` for a per-minute STT entry."""
    return _minutes_cost(resolve_model_pricing(table, provider, model), audio_seconds)


def calculate_tts_cost(
    table: Mapping[str, ProviderPricing], provider: str, characters: int, model: str | None = None
) -> float:
    """``characters / 1000 * price`` for a per-1k-characters TTS entry."""
    entry = resolve_model_pricing(table, provider, model)
    if entry.get("unit") != PricingUnit.THOUSAND_CHARS:
        return 0.0
    return round(_num(characters) / 1000.0 * entry.get("price", 0.0), 6)


def calculate_telephony_cost(
    table: Mapping[str, ProviderPricing], provider: str, duration_seconds: float
) -> float:
    """Call minutes times price; ``round_up`` entries (Twilio) bill every started minute in full."""
    return _minutes_cost(resolve_model_pricing(table, provider), duration_seconds)


def calculate_llm_cost(
    table: Mapping[str, ProviderPricing],
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> float:
    """Chat LLM cost from per-1M-token rates. Unknown models cost 0.

    Contract: ``input_tokens`` are the *uncached* input tokens (Anthropic's convention). Providers that
    report a total including cache hits (OpenAI ``prompt_tokens``, Gemini) must subtract
    ``cache_read_tokens`` first. Missing cache rates bill cache tokens at the input rate.
    """
    entry = resolve_model_pricing(table, provider, model)
    if entry.get("unit") != PricingUnit.TOKEN or "input_per_million" not in entry:
        return 0.0
    inp = entry.get("input_per_million", 0.0)
    cost = (
        _num(input_tokens) * inp
        + _num(output_tokens) * entry.get("output_per_million", 0.0)
        + _num(cache_read_tokens) * entry.get("cache_read_per_million", inp)
        + _num(cache_write_tokens) * entry.get("cache_write_per_million", inp)
    ) / _M
    return round(cost, 6)


def _details(usage: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = usage.get(key)
    return value if isinstance(value, Mapping) else {}


def calculate_realtime_cost(
    table: Mapping[str, ProviderPricing], model: str, usage: Mapping[str, Any]
) -> tuple[float, float]:
    """``(cost, cached_savings)`` of one OpenAI Realtime ``response.done`` ``usage`` object (API.md D.2).

    Cached input is split into audio/text from ``input_token_details.cached_tokens_details``; older
    (beta) usage only has ``cached_tokens``, which is pro-rated by the audio/text input mix. Cost is
    clamped at 0. Savings = cached tokens times (full rate - cached rate).
    """
    entry = resolve_model_pricing(table, "openai_realtime", model)
    if entry.get("unit") != PricingUnit.TOKEN or not isinstance(usage, Mapping):
        return 0.0, 0.0
    inp, out = _details(usage, "input_token_details"), _details(usage, "output_token_details")
    audio_in, text_in = _num(inp.get("audio_tokens")), _num(inp.get("text_tokens"))
    cached_split = _details(inp, "cached_tokens_details")
    if "audio_tokens" in cached_split or "text_tokens" in cached_split:
        cached_audio, cached_text = (
            _num(cached_split.get("audio_tokens")),
            _num(cached_split.get("text_tokens")),
        )
    else:
        cached = _num(inp.get("cached_tokens"))
        total_in = audio_in + text_in
        cached_audio = cached * audio_in / total_in if total_in else 0.0
        cached_text = cached - cached_audio if total_in else 0.0

    audio_rate = entry.get("audio_input_per_token", 0.0)
    text_rate = entry.get("text_input_per_token", 0.0)
    cached_audio_rate = entry.get("cached_audio_input_per_token", audio_rate)
    cached_text_rate = entry.get("cached_text_input_per_token", text_rate)
    cost = (
        (audio_in - cached_audio) * audio_rate
        + cached_audio * cached_audio_rate
        + (text_in - cached_text) * text_rate
        + cached_text * cached_text_rate
        + _num(out.get("audio_tokens")) * entry.get("audio_output_per_token", 0.0)
        + _num(out.get("text_tokens")) * entry.get("text_output_per_token", 0.0)
    )
    savings = cached_audio * (audio_rate - cached_audio_rate) + cached_text * (text_rate - cached_text_rate)
    return round(max(cost, 0.0), 6), round(max(savings, 0.0), 6)


__all__ = [
    "DEFAULT_PRICING",
    "PRICING_LAST_UPDATED",
    "PRICING_VERSION",
    "PricingTable",
    "PricingUnit",
    "ProviderPricing",
    "calculate_llm_cost",
    "calculate_realtime_cost",
    "calculate_stt_cost",
    "calculate_telephony_cost",
    "calculate_tts_cost",
    "has_calibrated_price",
    "merge_pricing",
    "resolve_model_pricing",
]
