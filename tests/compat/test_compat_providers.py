"""Provider and engine objects read the way Patter's provider pages describe them.

Documented facts: every provider takes ``api_key`` (or reads its env var); ``ElevenLabsTTS.for_twilio()``
sets ``output_format`` ``"ulaw_8000"`` and ``for_telnyx()`` ``"pcm_16000"``; ``CartesiaTTS`` takes
``model``/``voice``/``sample_rate``; ``OpenAIRealtime(voice=...)``. Code written for Patter reads
``api_key``, ``model``, ``voice``, ``output_format`` (the vendor's string) and, where the vendor versions
its API in a header, ``api_version``. Keys are readable by code and never appear in a ``repr``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

import getpatter
from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.stt.base import STT

SECRET = "sk-SECRET-do-not-print-42"

#: (flat name, extra constructor kwargs) for every provider and engine getpatter exports.
PROVIDERS: list[tuple[str, dict[str, Any]]] = [
    ("DeepgramSTT", {}),
    ("WhisperSTT", {}),
    ("OpenAITranscribeSTT", {}),
    ("AssemblyAISTT", {}),
    ("CartesiaSTT", {}),
    ("SonioxSTT", {}),
    ("SpeechmaticsSTT", {}),
    ("OpenAILLM", {}),
    ("AnthropicLLM", {}),
    ("GroqLLM", {}),
    ("CerebrasLLM", {}),
    ("GoogleLLM", {}),
    ("OpenAITTS", {}),
    ("ElevenLabsTTS", {}),
    ("ElevenLabsWebSocketTTS", {}),
    ("CartesiaTTS", {}),
    ("RimeTTS", {}),
    ("LMNTTTS", {}),
    ("OpenAIRealtime", {}),
    ("ElevenLabsConvAI", {"agent_id": "agent_123"}),
]
TTS_NAMES = {"OpenAITTS", "ElevenLabsTTS", "ElevenLabsWebSocketTTS", "CartesiaTTS", "RimeTTS", "LMNTTTS"}


def build(name: str, extra: dict[str, Any]) -> Any:
    factory: Callable[..., Any] = getattr(getpatter, name)
    return factory(api_key=SECRET, **extra)


@pytest.mark.parametrize(("name", "extra"), PROVIDERS, ids=[name for name, _ in PROVIDERS])
def test_api_key_readable_but_never_in_repr_or_str(name: str, extra: dict[str, Any]) -> None:
    provider = build(name, extra)
    assert provider.api_key == SECRET
    assert SECRET not in repr(provider)
    assert SECRET not in str(provider)


@pytest.mark.parametrize(("name", "extra"), PROVIDERS, ids=[name for name, _ in PROVIDERS])
def test_model_is_a_string_and_api_version_exists(name: str, extra: dict[str, Any]) -> None:
    provider = build(name, extra)
    assert isinstance(provider.model, str)
    assert isinstance(provider.api_version, str)
    if name in TTS_NAMES or name in ("OpenAIRealtime", "ElevenLabsConvAI"):
        assert isinstance(provider.voice, str)


@pytest.mark.parametrize(("name", "extra"), PROVIDERS, ids=[name for name, _ in PROVIDERS])
def test_key_falls_back_to_env_and_is_readable(
    name: str, extra: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    factory: Callable[..., Any] = getattr(getpatter, name)
    for var in (
        "DEEPGRAM_API_KEY",
        "OPENAI_API_KEY",
        "ASSEMBLYAI_API_KEY",
        "CARTESIA_API_KEY",
        "SONIOX_API_KEY",
        "SPEECHMATICS_API_KEY",
        "ANTHROPIC_API_KEY",
        "GROQ_API_KEY",
        "CEREBRAS_API_KEY",
        "GEMINI_API_KEY",
        "ELEVENLABS_API_KEY",
        "RIME_API_KEY",
        "LMNT_API_KEY",
    ):
        monkeypatch.setenv(var, f"env-{var}")
    provider = factory(**extra)
    assert provider.api_key.startswith("env-")
    assert provider.api_key not in repr(provider)


def test_missing_key_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        getpatter.DeepgramSTT()


def test_elevenlabs_carrier_factories_set_the_vendor_output_format() -> None:
    for cls in (getpatter.ElevenLabsTTS, getpatter.ElevenLabsWebSocketTTS):
        twilio = cls.for_twilio(api_key=SECRET, voice_id="rachel")
        telnyx = cls.for_telnyx(api_key=SECRET)
        assert twilio.output_format == "ulaw_8000"
        assert telnyx.output_format == "pcm_16000"
        assert cls(api_key=SECRET).output_format == "pcm_16000"
        # What the call layer converts from (our own attribute) agrees with the vendor string.
        assert (twilio.audio_format, telnyx.audio_format) == (MULAW_8K, PCM16_16K)
        assert twilio.voice == twilio.voice_id == "21m00Tcm4TlvDq8ikWAM"  # "rachel" resolved
        assert twilio.model == twilio.model_id == "eleven_flash_v2_5"


def test_other_tts_output_format_is_the_vendor_string() -> None:
    assert getpatter.OpenAITTS(api_key=SECRET).output_format == "pcm"
    cartesia = getpatter.CartesiaTTS(api_key=SECRET, voice="f786b574-daa5-4673-aa0c-cbe3e8534c02")
    assert (cartesia.output_format, cartesia.voice) == ("pcm_s16le", "f786b574-daa5-4673-aa0c-cbe3e8534c02")
    assert getpatter.CartesiaTTS.for_twilio(api_key=SECRET).output_format == "pcm_mulaw"
    assert getpatter.LMNTTTS.for_twilio(api_key=SECRET).output_format == "ulaw"
    rime = getpatter.RimeTTS.for_twilio(api_key=SECRET)
    assert (rime.output_format, rime.voice) == ("mulaw", rime.speaker)


def test_api_version_where_the_vendor_pins_one_in_a_header() -> None:
    assert getpatter.CartesiaTTS(api_key=SECRET).api_version == "2025-04-16"
    assert getpatter.CartesiaSTT(api_key=SECRET).api_version == "2025-04-16"
    assert getpatter.AnthropicLLM(api_key=SECRET).api_version == "2023-06-01"
    assert getpatter.DeepgramSTT(api_key=SECRET).api_version == ""


def test_engine_voice_and_model_as_documented() -> None:
    engine = getpatter.OpenAIRealtime(api_key=SECRET, voice="shimmer")
    assert (engine.voice, engine.model) == ("shimmer", "gpt-4o-mini-realtime-preview")


@pytest.mark.parametrize("voice", ["nova", "fable", "onyx"])
def test_tts_only_voices_patter_lists_for_realtime_are_refused_with_the_fix(voice: str) -> None:
    # Patter's docs list OpenAI TTS voices for the Realtime engine; the Realtime API refuses them
    # (openai-realtime.md), so getpatter says so at construction instead of failing the call.
    with pytest.raises(
        getpatter.PatterConfigError, match=f"{voice!r} is not an OpenAI Realtime voice"
    ) as info:
        getpatter.OpenAIRealtime(api_key=SECRET, voice=voice)
    assert "alloy" in str(info.value) and "allow_unlisted_voice=True" in str(info.value)


def test_agent_takes_voice_and_model_from_the_engine() -> None:
    phone = getpatter.Patter()
    agent = phone.agent(system_prompt="x", engine=getpatter.OpenAIRealtime(api_key=SECRET, voice="echo"))
    assert (agent.voice, agent.model, agent.provider) == (
        "echo",
        "gpt-4o-mini-realtime-preview",
        "openai_realtime",
    )
    assert SECRET not in repr(agent)


def test_custom_provider_may_assign_api_key() -> None:
    class MySTT(STT):
        async def open(self) -> Any:
            raise NotImplementedError

        def __init__(self, api_key: str) -> None:
            self.api_key = api_key  # the usual pattern in hand-written providers

    custom = MySTT("custom-key")
    assert custom.api_key == "custom-key"
    assert "custom-key" not in repr(custom)


def test_constructing_providers_logs_no_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        for name, extra in PROVIDERS:
            build(name, extra)
    assert SECRET not in caplog.text


def test_custom_tts_declaring_its_decoded_format_as_output_format_is_told_the_new_name() -> None:
    from collections.abc import AsyncIterator

    from getpatter.audio.format import AudioFormat
    from getpatter.tts.base import TTS

    class MyTTS(TTS):
        def __init__(self) -> None:
            self.output_format = AudioFormat("pcm16", 24000)  # type: ignore[assignment]

        async def synthesize(self, text: str) -> AsyncIterator[bytes]:
            yield b""

    phone = getpatter.Patter()
    with pytest.raises(TypeError, match=r"audio_format = AudioFormat\('pcm16', 16000\)"):
        phone.agent(system_prompt="x", stt=getpatter.DeepgramSTT(api_key=SECRET), tts=MyTTS())
