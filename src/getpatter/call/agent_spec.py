"""The ``Agent`` a call runs: a frozen description of prompt, providers, tools and options.

Built and validated by ``phone.agent(...)`` (``getpatter/agent.py``, which re-exports it); defined here so
the call and server layers that read it do not import the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from getpatter.guardrails import Guardrail, normalize_guardrails
from getpatter.llm.base import LLM
from getpatter.stt.base import STT
from getpatter.tts.base import TTS

if TYPE_CHECKING:
    from getpatter.tools.tool import Tool

ProviderMode = Literal["openai_realtime", "elevenlabs_convai", "pipeline"]
DEFAULT_REALTIME_MODEL = "gpt-4o-mini-realtime-preview"


@dataclass(frozen=True, slots=True, kw_only=True)
class Agent:
    """Everything a call needs to know about the agent. Frozen: per-call overrides make a copy."""

    system_prompt: str
    voice: str = "alloy"
    model: str = DEFAULT_REALTIME_MODEL
    language: str = "en"
    first_message: str = ""
    #: Normalized at construction: dict tools become :class:`~getpatter.tools.Tool`.
    tools: tuple[Tool, ...] = ()
    provider: ProviderMode = "openai_realtime"
    engine: Any = None
    stt: STT | None = None
    llm: LLM | None = None
    tts: TTS | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: ``None`` when no guardrails were given (as in Patter), else the normalized tuple.
    guardrails: tuple[Guardrail, ...] | None = None
    hooks: Any = None
    text_transforms: tuple[Callable[[str], str], ...] = ()
    vad: Any = None
    audio_filter: Any = None
    background_audio: Any = None
    barge_in_threshold_ms: int = 300
    aggressive_first_flush: bool = False

    def __post_init__(self) -> None:
        # Also runs for Agent(...) built directly and for per-call copies (dataclasses.replace), so a dict
        # tool, a bare function or a duplicate name is refused here, never when the first call starts.
        from getpatter.tools.tool import normalize_tools  # lazy: keeps ``import getpatter`` light

        object.__setattr__(self, "tools", tuple(normalize_tools(self.tools)))
        if self.guardrails is not None:
            object.__setattr__(self, "guardrails", normalize_guardrails(self.guardrails))


__all__ = ["DEFAULT_REALTIME_MODEL", "Agent", "ProviderMode"]
