"""Keyword arguments of the existing Patter SDK's ``Patter(...)`` that getpatter does not take.

Code written for Patter arrives with them (``api_key=`` for Patter Cloud, the pre-0.5 ``twilio_sid=`` /
``openai_key=`` form, ``mode=``, ``telemetry=``). Python's own "unexpected keyword argument" says
nothing useful, so each one is refused here with the reason and the one-line replacement
(docs/migrating-from-patter.md lists them all). The few that mean exactly what getpatter already does
(``mode="local"``, ``telemetry=False``) are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from getpatter.errors import PatterConfigError, PatterTypeError, PatterUnsupportedError

#: What ``Patter(...)`` takes, for the "unexpected keyword" message.

_CLOUD = (
    "is Patter Cloud, which getpatter does not use: pass carrier=..., phone_number=... instead "
    "(e.g. Patter(carrier=Twilio(), phone_number='+15550001234', webhook_url='agent.example.com'))"
)

#: Pre-0.5 Patter credentials passed to the client, and where they go now.
_LEGACY_KEYS: Final[Mapping[str, str]] = {
    "twilio_sid": "carrier=Twilio(account_sid=..., auth_token=...) (or set TWILIO_ACCOUNT_SID)",
    "twilio_token": "carrier=Twilio(account_sid=..., auth_token=...) (or set TWILIO_AUTH_TOKEN)",
    "telnyx_key": "carrier=Telnyx(api_key=..., connection_id=...) (or set TELNYX_API_KEY)",
    "telnyx_connection_id": "carrier=Telnyx(api_key=..., connection_id=...) (or set TELNYX_CONNECTION_ID)",
    "telnyx_public_key": "carrier=Telnyx(..., public_key=...) (or set TELNYX_PUBLIC_KEY)",
    "openai_key": "the provider: phone.agent(engine=OpenAIRealtime(api_key=...)) or OpenAILLM(api_key=...) "
    "(or set OPENAI_API_KEY)",
    "elevenlabs_key": "the provider: ElevenLabsTTS(api_key=...) or ElevenLabsConvAI(api_key=...) "
    "(or set ELEVENLABS_API_KEY)",
    "deepgram_key": "the provider: DeepgramSTT(api_key=...) (or set DEEPGRAM_API_KEY)",
}


def reject_client_kwargs(kwargs: Mapping[str, object], accepted: Sequence[str]) -> None:
    """Refuse every Patter-only keyword of ``Patter(...)`` with the reason and the replacement
    (``accepted``: the parameters ``Patter(...)`` does take, for the unknown-keyword message)."""
    for name, value in kwargs.items():
        if name in ("api_key", "backend_url"):
            raise PatterUnsupportedError(f"Patter({name}=...) {_CLOUD}.")
        if name == "mode":
            if value == "local":
                continue  # the only mode getpatter has
            raise PatterUnsupportedError(
                f"Patter(mode={value!r}): getpatter always runs locally (mode='local'); any other mode "
                f"{_CLOUD}. Fix: drop mode=."
            )
        if name == "telemetry":
            if value is None or value is False:
                continue  # getpatter never sends usage telemetry, so "off" is what it does anyway
            raise PatterConfigError(
                f"Patter(telemetry={value!r}): getpatter sends no usage telemetry. Fix: drop telemetry=."
            )
        if name in _LEGACY_KEYS:
            raise PatterTypeError(
                f"Patter({name}=...) is the pre-0.5 Patter form; getpatter takes credentials on the carrier "
                f"and provider objects. Fix: pass {_LEGACY_KEYS[name]}."
            )
        raise PatterTypeError(
            f"Patter() got an unexpected keyword argument {name!r}. It takes: {', '.join(accepted)}."
        )


#: ``phone.agent(...)`` options of Patter 0.7 that getpatter does not implement (API.md A.3, "0.7.0-only").
PATTER07_AGENT_OPTIONS: Final = frozenset(
    {
        "llm_error_message", "long_turn_message", "long_turn_message_after_s", "turn_detector",
        "max_semantic_hold_ms", "barge_in_mode", "barge_in_confirm_ms", "disable_phone_preamble",
        "echo_cancellation", "high_pass_hz", "agc", "mcp_servers", "consult", "handoffs", "skills",
        "prewarm_first_message", "prewarm", "openai_realtime_noise_reduction", "realtime_turn_detection",
        "realtime_gate_response_on_transcript", "tool_call_preambles", "preemptive_generation",
        "preemptive_min_stable_ms", "max_history", "compaction", "context_token_budget",
    }
)  # fmt: skip

#: Pre-0.5 Patter keys passed to ``phone.agent(...)``, and where they go now.
_LEGACY_AGENT_KEYS: Final[Mapping[str, str]] = {
    "openai_key": "engine=OpenAIRealtime(api_key=...) (or set OPENAI_API_KEY)",
    "elevenlabs_key": "engine=ElevenLabsConvAI(api_key=..., agent_id=...) or tts=ElevenLabsTTS(api_key=...)",
    "elevenlabs_agent_id": "engine=ElevenLabsConvAI(agent_id=...) (or set ELEVENLABS_AGENT_ID)",
    "deepgram_key": "stt=DeepgramSTT(api_key=...) (or set DEEPGRAM_API_KEY)",
}

_MODES: Final[Mapping[str, str]] = {
    "openai_realtime": "engine=OpenAIRealtime(...) (or no engine/stt/tts at all)",
    "elevenlabs_convai": "engine=ElevenLabsConvAI(...)",
    "pipeline": "stt=..., tts=... (with llm=..., or serve(on_message=...))",
}


def reject_agent_kwargs(kwargs: Mapping[str, object], *, pipeline_given: bool) -> str | None:
    """Refuse Patter-only keywords of ``phone.agent(...)``; return the ``provider=`` value if one was given.

    ``provider=`` (Patter 0.7) is accepted when it names the mode the other arguments select; getpatter
    picks the mode from ``engine=``/``stt=``/``llm=``/``tts=``, so a different value is refused with the
    arguments that select it (see :func:`check_agent_provider`).
    """
    provider: str | None = None
    for name, value in kwargs.items():
        if name == "provider":
            if not isinstance(value, str) or value not in _MODES:
                raise PatterConfigError(
                    f"phone.agent(provider={value!r}) is not a mode. getpatter picks the mode from the "
                    f"arguments: {'; '.join(f'{mode}: {how}' for mode, how in _MODES.items())}."
                )
            provider = value
            if value == "pipeline" and not pipeline_given:
                check_agent_provider(value, "openai_realtime")
        elif name in _LEGACY_AGENT_KEYS:
            raise PatterTypeError(
                f"phone.agent({name}=...) is the pre-0.5 Patter form; getpatter takes keys on the provider "
                f"objects. Fix: pass {_LEGACY_AGENT_KEYS[name]}."
            )
        elif name in PATTER07_AGENT_OPTIONS:
            raise PatterTypeError(
                f"phone.agent({name}=...) is a Patter 0.7 option that getpatter does not have. Fix: remove "
                "it (docs/migrating-from-patter.md lists these options and what to use instead)."
            )
        else:
            raise PatterTypeError(f"phone.agent() got an unexpected keyword argument {name!r}.")
    return provider


def check_agent_provider(wanted: str | None, resolved: str) -> None:
    """Refuse a ``provider=`` that disagrees with the mode the agent's arguments select."""
    if wanted is not None and wanted != resolved:
        raise PatterConfigError(
            f"phone.agent(provider={wanted!r}) but the other arguments make a {resolved!r} agent: getpatter "
            f"picks the mode from them. Fix: pass {_MODES[wanted]}, or drop provider=."
        )


__all__ = [
    "PATTER07_AGENT_OPTIONS",
    "check_agent_provider",
    "reject_agent_kwargs",
    "reject_client_kwargs",
]
