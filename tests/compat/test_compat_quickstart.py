"""The Patter docs' quickstarts, line by line, against getpatter's top-level API.

Documented facts: ``phone.agent(system_prompt=..., first_message=...)`` defaults to the OpenAI Realtime
engine (``OPENAI_API_KEY`` from env, voice ``alloy``, model ``gpt-4o-mini-realtime-preview``); a pipeline is
``stt=``/``llm=``/``tts=`` with keys from env; flat and namespaced imports are equivalent; ``variables``
fill ``{placeholders}``; ``llm=`` and ``on_message`` are mutually exclusive.
"""

from __future__ import annotations

import pytest

from getpatter import (
    AnthropicLLM,
    DeepgramSTT,
    ElevenLabsTTS,
    OpenAIRealtime,
    Patter,
    PatterConfigError,
    Twilio,
)

from .conftest import NUMBER


def test_realtime_quickstart_defaults(phone: Patter, quickstart_env: dict[str, str]) -> None:
    agent = phone.agent(
        system_prompt="You are a customer support agent for Acme Corp.",
        first_message="Hello! How can I help you today?",
    )
    assert agent.provider == "openai_realtime"
    assert (agent.voice, agent.model, agent.language) == ("alloy", "gpt-4o-mini-realtime-preview", "en")
    assert agent.first_message == "Hello! How can I help you today?"
    assert agent.tools == () and agent.guardrails is None


def test_explicit_engine(phone: Patter, quickstart_env: dict[str, str]) -> None:
    engine = OpenAIRealtime(voice="shimmer")
    assert engine.api_key == quickstart_env["OPENAI_API_KEY"]
    agent = phone.agent(engine=engine, system_prompt="x")
    assert (agent.voice, agent.engine) == ("shimmer", engine)


def test_pipeline_quickstart_with_env_keys(phone: Patter, quickstart_env: dict[str, str]) -> None:
    agent = phone.agent(
        stt=DeepgramSTT(endpointing_ms=80),
        llm=AnthropicLLM(),
        tts=ElevenLabsTTS(voice_id="rachel"),
        system_prompt="You are a helpful assistant.",
        first_message="Hi!",
    )
    assert agent.provider == "pipeline"
    assert agent.stt is not None and agent.stt.api_key == quickstart_env["DEEPGRAM_API_KEY"]
    assert agent.llm is not None and agent.llm.api_key == quickstart_env["ANTHROPIC_API_KEY"]
    assert agent.tts is not None and agent.tts.api_key == quickstart_env["ELEVENLABS_API_KEY"]
    assert agent.tts.voice == "21m00Tcm4TlvDq8ikWAM"


def test_namespaced_imports_are_the_flat_classes() -> None:
    from getpatter.llm import anthropic
    from getpatter.stt import deepgram
    from getpatter.tts import elevenlabs

    assert deepgram.STT is DeepgramSTT
    assert anthropic.LLM is AnthropicLLM
    assert elevenlabs.TTS is ElevenLabsTTS


def test_realtime_without_openai_key_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    phone = Patter(carrier=Twilio(), phone_number=NUMBER)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        phone.agent(system_prompt="x")


def test_variables_must_be_a_dict_and_lists_must_be_lists(phone: Patter) -> None:
    agent = phone.agent(system_prompt="Hi {name}", variables={"name": "Ada"})
    assert dict(agent.variables) == {"name": "Ada"}
    with pytest.raises(TypeError, match="variables must be a dict"):
        phone.agent(system_prompt="x", variables=[("name", "Ada")])  # type: ignore[arg-type]


def test_llm_and_on_message_are_mutually_exclusive(phone: Patter) -> None:
    agent = phone.agent(stt=DeepgramSTT(), llm=AnthropicLLM(), tts=ElevenLabsTTS(), system_prompt="x")
    with pytest.raises(PatterConfigError, match="mutually exclusive"):
        phone.asgi_app(agent, on_message=lambda event: "hi")


def test_engine_with_stt_is_a_value_error(phone: Patter) -> None:
    with pytest.raises(ValueError, match="cannot be combined with stt=/tts="):
        phone.agent(system_prompt="x", engine=OpenAIRealtime(), stt=DeepgramSTT())


def test_provider_keyword_accepted_when_it_matches_the_mode(phone: Patter) -> None:
    pipeline = phone.agent(
        system_prompt="x", provider="pipeline", stt=DeepgramSTT(), llm=AnthropicLLM(), tts=ElevenLabsTTS()
    )
    assert pipeline.provider == "pipeline"
    assert phone.agent(system_prompt="x", provider="openai_realtime").provider == "openai_realtime"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"provider": "pipeline"}, "Fix: pass stt=..., tts=..."),
        ({"provider": "elevenlabs_convai"}, "Fix: pass engine=ElevenLabsConvAI(...)"),
        ({"provider": "cloud"}, "is not a mode"),
    ],
)
def test_provider_keyword_that_disagrees_names_the_arguments(
    phone: Patter, kwargs: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ValueError, match="provider=") as info:
        phone.agent(system_prompt="x", **kwargs)
    assert fragment in str(info.value)


def test_patter_07_only_agent_options_are_named() -> None:
    phone = Patter()
    with pytest.raises(TypeError, match=r"barge_in_mode=...\) is a Patter 0.7 option"):
        phone.agent(system_prompt="x", barge_in_mode="pause_resume")
    with pytest.raises(TypeError, match=r"Fix: pass stt=DeepgramSTT\(api_key=...\)"):
        phone.agent(system_prompt="x", deepgram_key="dg")
    with pytest.raises(TypeError, match="unexpected keyword argument 'sytem_prompt'"):
        phone.agent(system_prompt="x", sytem_prompt="typo")
