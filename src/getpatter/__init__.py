"""getpatter: give an AI agent a phone number.

Light names are imported eagerly; provider classes (which pull in HTTP/WebSocket clients and numpy)
load on first use, so ``import getpatter`` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from getpatter._version import __version__
from getpatter.agent import Agent
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import (
    AtCapacityError,
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    PatterTypeError,
    PatterUnsupportedError,
    ProvisionError,
    RateLimitError,
)
from getpatter.patter import Patter
from getpatter.tunnels.config import CloudflareTunnel, Ngrok, Static, StaticTunnel

# httpx's package __init__ imports its command-line client (click, rich, pygments: ~4 MB and ~25 ms) whenever
# those are installed, and rich is one of our dependencies. No server needs that CLI; marking the module
# absent makes httpx fall back to its stub ``httpx.main``. The ``httpx`` command itself is unaffected.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

_LAZY: dict[str, str] = {
    # providers
    "DeepgramSTT": "getpatter.stt.deepgram",
    "WhisperSTT": "getpatter.stt.whisper",
    "OpenAITranscribeSTT": "getpatter.stt.openai_transcribe",
    "AssemblyAISTT": "getpatter.stt.assemblyai",
    "CartesiaSTT": "getpatter.stt.cartesia",
    "SonioxSTT": "getpatter.stt.soniox",
    "SpeechmaticsSTT": "getpatter.stt.speechmatics",
    "OpenAILLM": "getpatter.llm.openai",
    "OpenAICompatibleLLM": "getpatter.llm.openai",
    "AnthropicLLM": "getpatter.llm.anthropic",
    "GroqLLM": "getpatter.llm.groq",
    "CerebrasLLM": "getpatter.llm.cerebras",
    "GoogleLLM": "getpatter.llm.google",
    "FallbackLLM": "getpatter.llm.fallback",
    "FallbackLLMProvider": "getpatter.llm.fallback",
    "AllProvidersFailedError": "getpatter.llm.fallback",
    "PartialStreamError": "getpatter.llm.fallback",
    "OpenAITTS": "getpatter.tts.openai",
    "ElevenLabsTTS": "getpatter.tts.elevenlabs",
    "ElevenLabsWebSocketTTS": "getpatter.tts.elevenlabs_ws",
    "ElevenLabsTTSError": "getpatter.tts.elevenlabs_ws",
    "CartesiaTTS": "getpatter.tts.cartesia",
    "RimeTTS": "getpatter.tts.rime",
    "LMNTTTS": "getpatter.tts.lmnt",
    "OpenAIRealtime": "getpatter.engines.openai_realtime",
    "ElevenLabsConvAI": "getpatter.engines.elevenlabs_convai",
    # offline (extra "local") and dev tools
    "LocalSTT": "getpatter.local",
    "LocalTTS": "getpatter.local",
    "SileroVAD": "getpatter.local",
    "PiperTTS": "getpatter.local.piper",
    "ScriptedLLM": "getpatter.local",
    "PhoneSimulator": "getpatter.simulator",
    # metrics and call history
    "MetricsStore": "getpatter.dashboard.store",
    "calls_to_csv": "getpatter.dashboard.store",
    "calls_to_json": "getpatter.dashboard.store",
    "CallMetrics": "getpatter.metrics.model",
    "CostBreakdown": "getpatter.metrics.model",
    "LatencyBreakdown": "getpatter.metrics.model",
    "TurnMetrics": "getpatter.metrics.model",
    # tracing (extra "tracing")
    "init_tracing": "getpatter.tracing",
    "is_tracing_enabled": "getpatter.tracing",
    "shutdown_tracing": "getpatter.tracing",
    "start_span": "getpatter.tracing",
    # tools and guardrails
    "Tool": "getpatter.tools",
    "tool": "getpatter.tools",
    "Guardrail": "getpatter.guardrails",
    "guardrail": "getpatter.guardrails",
    # call layer
    "CallControl": "getpatter.call.context",
    "EventBus": "getpatter.call.bus",
    "PipelineHooks": "getpatter.call.hooks",
    "HookContext": "getpatter.call.hooks",
    "AfterLLMHooks": "getpatter.call.hooks",
    "PatterDeprecationWarning": "getpatter.call.hooks",
    # text helpers
    "filter_markdown": "getpatter.text.transforms",
    "filter_emoji": "getpatter.text.transforms",
    "filter_for_tts": "getpatter.text.transforms",
    "SentenceChunker": "getpatter.text.chunker",
    # audio helpers (API.md E.5)
    "mulaw_to_pcm16": "getpatter.audio",
    "pcm16_to_mulaw": "getpatter.audio",
    "alaw_to_pcm16": "getpatter.audio",
    "pcm16_to_alaw": "getpatter.audio",
    "StatefulResampler": "getpatter.audio",
    "StreamResampler": "getpatter.audio",
    "create_resampler_8k_to_16k": "getpatter.audio",
    "create_resampler_16k_to_8k": "getpatter.audio",
    "create_resampler_24k_to_16k": "getpatter.audio",
    "create_resampler_24k_to_8k": "getpatter.audio",
    "PcmCarry": "getpatter.audio",
    "FormatConverter": "getpatter.audio",
    "AudioFormat": "getpatter.audio",
    "VAD": "getpatter.audio",
    "EnergyVAD": "getpatter.audio",
    # pricing (API.md D.3)
    "DEFAULT_PRICING": "getpatter.metrics.pricing",
    "PRICING_VERSION": "getpatter.metrics.pricing",
    "PRICING_LAST_UPDATED": "getpatter.metrics.pricing",
    "PricingUnit": "getpatter.metrics.pricing",
    "ProviderPricing": "getpatter.metrics.pricing",
    "merge_pricing": "getpatter.metrics.pricing",
    "calculate_stt_cost": "getpatter.metrics.pricing",
    "calculate_tts_cost": "getpatter.metrics.pricing",
    "calculate_llm_cost": "getpatter.metrics.pricing",
    "calculate_realtime_cost": "getpatter.metrics.pricing",
    "calculate_telephony_cost": "getpatter.metrics.pricing",
}

if TYPE_CHECKING:
    from getpatter.audio import (
        VAD,
        AudioFormat,
        EnergyVAD,
        FormatConverter,
        PcmCarry,
        StatefulResampler,
        StreamResampler,
        alaw_to_pcm16,
        create_resampler_8k_to_16k,
        create_resampler_16k_to_8k,
        create_resampler_24k_to_8k,
        create_resampler_24k_to_16k,
        mulaw_to_pcm16,
        pcm16_to_alaw,
        pcm16_to_mulaw,
    )
    from getpatter.call.bus import EventBus
    from getpatter.call.context import CallControl
    from getpatter.call.hooks import AfterLLMHooks, HookContext, PatterDeprecationWarning, PipelineHooks
    from getpatter.dashboard.store import MetricsStore, calls_to_csv, calls_to_json
    from getpatter.engines.elevenlabs_convai import ElevenLabsConvAI
    from getpatter.engines.openai_realtime import OpenAIRealtime
    from getpatter.guardrails import Guardrail, guardrail
    from getpatter.llm.anthropic import AnthropicLLM
    from getpatter.llm.cerebras import CerebrasLLM
    from getpatter.llm.fallback import (
        AllProvidersFailedError,
        FallbackLLM,
        FallbackLLMProvider,
        PartialStreamError,
    )
    from getpatter.llm.google import GoogleLLM
    from getpatter.llm.groq import GroqLLM
    from getpatter.llm.openai import OpenAICompatibleLLM, OpenAILLM
    from getpatter.local import LocalSTT, LocalTTS, ScriptedLLM, SileroVAD
    from getpatter.local.piper import PiperTTS
    from getpatter.metrics.model import CallMetrics, CostBreakdown, LatencyBreakdown, TurnMetrics
    from getpatter.metrics.pricing import (
        DEFAULT_PRICING,
        PRICING_LAST_UPDATED,
        PRICING_VERSION,
        PricingUnit,
        ProviderPricing,
        calculate_llm_cost,
        calculate_realtime_cost,
        calculate_stt_cost,
        calculate_telephony_cost,
        calculate_tts_cost,
        merge_pricing,
    )
    from getpatter.simulator import PhoneSimulator
    from getpatter.stt.assemblyai import AssemblyAISTT
    from getpatter.stt.cartesia import CartesiaSTT
    from getpatter.stt.deepgram import DeepgramSTT
    from getpatter.stt.openai_transcribe import OpenAITranscribeSTT
    from getpatter.stt.soniox import SonioxSTT
    from getpatter.stt.speechmatics import SpeechmaticsSTT
    from getpatter.stt.whisper import WhisperSTT
    from getpatter.text.chunker import SentenceChunker
    from getpatter.text.transforms import filter_emoji, filter_for_tts, filter_markdown
    from getpatter.tools import Tool, tool
    from getpatter.tracing import init_tracing, is_tracing_enabled, shutdown_tracing, start_span
    from getpatter.tts.cartesia import CartesiaTTS
    from getpatter.tts.elevenlabs import ElevenLabsTTS
    from getpatter.tts.elevenlabs_ws import ElevenLabsTTSError, ElevenLabsWebSocketTTS
    from getpatter.tts.lmnt import LMNTTTS
    from getpatter.tts.openai import OpenAITTS
    from getpatter.tts.rime import RimeTTS


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'getpatter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Agent",
    "AtCapacityError",
    "AuthenticationError",
    "CloudflareTunnel",
    "ErrorCode",
    "Ngrok",
    "Patter",
    "PatterConfigError",
    "PatterConnectionError",
    "PatterError",
    "PatterTypeError",
    "PatterUnsupportedError",
    "ProvisionError",
    "RateLimitError",
    "Static",
    "StaticTunnel",
    "Telnyx",
    "Twilio",
    "__version__",
    *_LAZY,
]
