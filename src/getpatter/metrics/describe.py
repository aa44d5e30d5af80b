"""What a call really runs: the provider ids, models and voices of an agent, as one flat dict.

The call log (``metadata.json`` ``agent``), the dashboard record and the test-mode banner all name the
models from here, so they agree with what is priced (the ``UsageRecorded`` events carry the same ids).
An ``Agent`` always has ``model``/``voice`` fields, but in pipeline mode those are the unused realtime
defaults: the models that matter there are the STT's, the LLM's and the TTS's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["describe_agent", "describe_line"]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _voice(tts: object) -> str | None:
    for name in ("voice", "voice_id", "speaker"):
        if (value := _text(getattr(tts, name, None))) is not None:
            return value
    return None


def describe_agent(agent: Any) -> dict[str, Any]:
    """``provider``, ``language`` and the real ``model``/``voice`` of ``agent`` (duck-typed; ``None``s
    dropped). Pipeline: ``stt``/``llm``/``tts`` provider ids with ``stt_model``/``llm_model``/``tts_model``;
    ``model`` is the LLM's and ``voice`` the TTS's. Engines: ``engine`` (class name) and the model and
    voice the engine connects with (the agent's, which already holds per-call overrides)."""
    provider = getattr(agent, "provider", None)
    fields: dict[str, Any] = {"provider": provider, "language": getattr(agent, "language", None)}
    if provider == "pipeline":
        stt, llm, tts = (getattr(agent, part, None) for part in ("stt", "llm", "tts"))
        fields.update(
            stt=_text(getattr(stt, "provider_id", None)),
            stt_model=_text(getattr(stt, "model", None)),
            llm=_text(getattr(llm, "provider_id", None)),
            llm_model=_text(getattr(llm, "model", None)),
            tts=_text(getattr(tts, "provider_id", None)),
            tts_model=_text(getattr(tts, "model", None)),
            model=_text(getattr(llm, "model", None)),
            voice=_voice(tts),
        )
    else:
        engine = getattr(agent, "engine", None)
        fields["engine"] = type(engine).__name__ if engine is not None else "OpenAIRealtime"
        # ConvAI: model and voice live in the ElevenLabs agent's own config.
        source = engine if provider == "elevenlabs_convai" else agent
        fields["model"] = _text(getattr(source, "model", None))
        fields["voice"] = _text(getattr(source, "voice", None))
        if provider == "elevenlabs_convai":
            fields["agent_id"] = _text(getattr(engine, "agent_id", None))
    return {k: v for k, v in fields.items() if v is not None}


def describe_line(agent: Any) -> str:
    """One human line: ``pipeline: stt=deepgram/nova-3 llm=openai/gpt-4o-mini tts=openai/tts-1 voice=…``."""
    info = describe_agent(agent)
    if info.get("provider") == "pipeline":
        parts = [
            f"{part}={info.get(part, '?')}" + (f"/{info[part + '_model']}" if part + "_model" in info else "")
            for part in ("stt", "llm", "tts")
        ]
    else:
        parts = [f"engine={info.get('engine')}", f"model={info.get('model', '?')}"]
    if "voice" in info:
        parts.append(f"voice={info['voice']}")
    return f"{info.get('provider')}: " + " ".join(parts)
