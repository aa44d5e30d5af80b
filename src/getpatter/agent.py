"""``phone.agent(...)``: build and validate the :class:`Agent` a call runs (API.md A.3).

``Agent`` itself lives in ``call/agent_spec.py``, below the call layer that reads it; it is re-exported here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from getpatter.call.agent_spec import DEFAULT_REALTIME_MODEL, Agent, ProviderMode
from getpatter.errors import PatterConfigError, PatterTypeError
from getpatter.llm.base import LLM
from getpatter.stt.base import STT
from getpatter.tts.base import TTS

log = logging.getLogger("getpatter")


def build_agent(
    system_prompt: str,
    *,
    engine: Any = None,
    stt: STT | None = None,
    llm: LLM | None = None,
    tts: TTS | None = None,
    voice: str | None = None,
    model: str | None = None,
    language: str = "en",
    first_message: str = "",
    tools: Sequence[Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    guardrails: Sequence[Any] | None = None,
    hooks: Any = None,
    text_transforms: Sequence[Callable[[str], str]] | None = None,
    vad: Any = None,
    audio_filter: Any = None,
    background_audio: Any = None,
    barge_in_threshold_ms: int = 300,
    aggressive_first_flush: bool = False,
    env: Mapping[str, str] | None = None,
) -> Agent:
    """Validate ``phone.agent(...)`` arguments and resolve the mode: engine > pipeline > realtime default."""
    env = os.environ if env is None else env
    if not isinstance(system_prompt, str):
        raise PatterTypeError("system_prompt must be a str")
    for name, value in (("tools", tools), ("guardrails", guardrails), ("text_transforms", text_transforms)):
        if value is not None and not isinstance(value, list | tuple):
            raise PatterTypeError(f"{name} must be a list, got {type(value).__name__}")
    if variables is not None and not isinstance(variables, Mapping):
        raise PatterTypeError(f"variables must be a dict, got {type(variables).__name__}")
    if isinstance(barge_in_threshold_ms, bool) or not isinstance(barge_in_threshold_ms, int):
        raise PatterTypeError("barge_in_threshold_ms must be an int (milliseconds; 0 disables barge-in)")
    if barge_in_threshold_ms < 0:
        raise PatterConfigError("barge_in_threshold_ms must be >= 0 (0 disables barge-in)")
    if stt is not None and not isinstance(stt, STT):
        raise PatterTypeError(f"stt must be an STT provider (e.g. DeepgramSTT()), got {type(stt).__name__}")
    if tts is not None and not isinstance(tts, TTS):
        raise PatterTypeError(f"tts must be a TTS provider (e.g. ElevenLabsTTS()), got {type(tts).__name__}")
    if tts is not None and not isinstance(tts.output_format, str):
        raise PatterTypeError(
            f"{type(tts).__name__}.output_format is the vendor's format name (a str, e.g. 'pcm_16000'), got "
            f"{type(tts.output_format).__name__}. Fix: declare what synthesize() yields as "
            "audio_format = AudioFormat('pcm16', 16000)."
        )
    if llm is not None and not isinstance(llm, LLM):
        raise PatterTypeError(f"llm must be an LLM provider (e.g. OpenAILLM()), got {type(llm).__name__}")

    if audio_filter is not None and not callable(audio_filter):
        raise PatterConfigError(
            f"audio_filter must be a callable taking PCM16 16 kHz bytes and returning bytes, got "
            f"{type(audio_filter).__name__}. Fix: audio_filter=HighPassFilter() or NoiseGate() "
            "(from getpatter.audio.filters), or your own function"
        )
    if background_audio is not None and not callable(getattr(background_audio, "mixer", None)):
        raise PatterConfigError(
            f"background_audio must be a BackgroundAudioPlayer, got {type(background_audio).__name__}. Fix: "
            "background_audio=BackgroundAudioPlayer('ambience.wav', volume=0.1, loop=True) "
            "(from getpatter.audio.background)"
        )
    provider: ProviderMode
    if engine is not None:
        if stt is not None or tts is not None:
            raise PatterConfigError(
                "engine= runs speech-to-speech and cannot be combined with stt=/tts=: "
                "drop engine= for a pipeline, or drop stt=/tts="
            )
        provider = _engine_mode(engine)
        if llm is not None:
            log.warning("agent: llm= is ignored because engine= is set")
            llm = None
    elif stt is not None or tts is not None or llm is not None:
        provider = "pipeline"
        # llm= alone is a text agent: phone.test() runs it; serve()/call() refuse it (check_can_take_calls).
        if stt is None and tts is not None:
            raise PatterConfigError("pipeline mode needs stt= (e.g. stt=DeepgramSTT()) to hear the caller")
        if tts is None and stt is not None:
            raise PatterConfigError("pipeline mode needs tts= (e.g. tts=ElevenLabsTTS()) to speak")
    else:
        provider = "openai_realtime"
        if not env.get("OPENAI_API_KEY"):
            raise PatterConfigError(
                "no engine, stt or tts given, so the agent would use OpenAI Realtime, but OPENAI_API_KEY "
                "is not set: set it, pass engine=OpenAIRealtime(api_key=...), or give stt=/llm=/tts= "
                "for a pipeline"
            )

    _check_mode_options(
        provider,
        voice=voice,
        model=model,
        pipeline_only={
            "hooks": hooks is not None,
            "text_transforms": bool(text_transforms),
            "vad": vad is not None,
            "audio_filter": audio_filter is not None,
            "barge_in_threshold_ms": barge_in_threshold_ms != 300,
            "aggressive_first_flush": aggressive_first_flush,
        },
    )
    if provider == "openai_realtime" and voice:
        from getpatter.engines.base import check_realtime_voice

        check_realtime_voice(
            voice, "voice", allow_unlisted=bool(getattr(engine, "allow_unlisted_voice", False))
        )
    engine_voice = getattr(engine, "voice", "") or ""
    engine_model = getattr(engine, "model", "") or ""
    return Agent(
        system_prompt=system_prompt,
        voice=voice or engine_voice or "alloy",
        model=model or engine_model or DEFAULT_REALTIME_MODEL,
        language=language,
        first_message=first_message,
        tools=tuple(tools or ()),
        provider=provider,
        engine=engine,
        stt=stt,
        llm=llm,
        tts=tts,
        variables=dict(variables or {}),
        guardrails=None if guardrails is None else tuple(guardrails),
        hooks=hooks,
        text_transforms=tuple(text_transforms or ()),
        vad=vad,
        audio_filter=audio_filter,
        background_audio=background_audio,
        barge_in_threshold_ms=barge_in_threshold_ms,
        aggressive_first_flush=aggressive_first_flush,
    )


def _check_mode_options(
    provider: ProviderMode, *, voice: str | None, model: str | None, pipeline_only: Mapping[str, bool]
) -> None:
    """Options the chosen mode would never read are refused, naming where they belong."""
    if provider == "pipeline":
        given = [name for name, value in (("voice", voice), ("model", model)) if value is not None]
        if given:
            raise PatterConfigError(
                f"{'= and '.join(given)}= set the speech-to-speech engine's voice/model; this is a "
                "pipeline agent. Fix: set the voice on the TTS (e.g. ElevenLabsTTS(voice_id=...)) and the "
                "model on the LLM (e.g. OpenAILLM(model=...))"
            )
        return
    given = [name for name, set_ in pipeline_only.items() if set_]
    if given:
        raise PatterConfigError(
            f"{', '.join(f'{g}=' for g in given)} only apply to pipeline mode (stt=/llm=/tts=), but this "
            f"agent runs {provider}, which does its own listening and turn-taking. Fix: drop them, or "
            "build a pipeline agent"
        )


def check_can_take_calls(agent: Agent) -> None:
    """A phone call needs ears and a voice: refuse a pipeline agent without ``stt=``/``tts=`` (an
    ``llm=``-only agent is fine for ``phone.test()``, which is text in a terminal)."""
    if agent.provider != "pipeline":
        return
    missing = [name for name in ("stt", "tts") if getattr(agent, name) is None]
    if missing:
        raise PatterConfigError(
            f"this pipeline agent has no {' and no '.join(f'{m}=' for m in missing)}, so it cannot take a "
            "phone call (it works in phone.test() only). Fix: phone.agent(..., stt=DeepgramSTT(), "
            "tts=ElevenLabsTTS()) or another STT/TTS provider"
        )


def _engine_mode(engine: Any) -> ProviderMode:
    kind = getattr(engine, "provider_mode", None) or getattr(engine, "kind", None)
    if kind in ("openai_realtime", "elevenlabs_convai"):
        return kind  # type: ignore[no-any-return]
    raise PatterTypeError(f"engine must be OpenAIRealtime or ElevenLabsConvAI, got {type(engine).__name__}")


__all__ = ["DEFAULT_REALTIME_MODEL", "Agent", "ProviderMode", "build_agent", "check_can_take_calls"]
