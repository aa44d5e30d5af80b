"""The speech-to-speech engine interface (OpenAI Realtime, ElevenLabs ConvAI).

An engine object is configuration, shareable across calls; ``connect`` opens one session per call. The
call layer streams caller audio in, plays ``AudioOut`` to the caller, runs tools, and on barge-in calls
``interrupt`` with exactly how much of the current item the caller heard.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from getpatter._provider import ProviderAttributes
from getpatter.audio.format import AudioFormat
from getpatter.errors import PatterConfigError

#: The built-in voices the OpenAI Realtime API documents (protocols/openai-realtime.md).
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


def check_realtime_voice(voice: object, what: str, *, allow_unlisted: bool = False) -> None:
    """An OpenAI Realtime voice: a documented one, a custom voice id (``voice_...``), or, with
    ``allow_unlisted``, any name (a voice OpenAI added after this release)."""
    if isinstance(voice, str) and (
        voice in VOICES or voice.startswith("voice_") or (allow_unlisted and voice.strip())
    ):
        return
    raise PatterConfigError(
        f"{what}={voice!r} is not an OpenAI Realtime voice. Use one of {', '.join(VOICES)}, a custom "
        "voice id ('voice_...'), or OpenAIRealtime(..., allow_unlisted_voice=True) for a voice OpenAI "
        "added after this release."
    )


@dataclass(frozen=True, slots=True)
class EngineConfig:
    instructions: str
    voice: str = ""
    model: str = ""
    language: str = "en"
    first_message: str = ""
    #: Tools as ``{"name", "description", "parameters"}`` (JSON schema).
    tools: tuple[dict[str, Any], ...] = ()
    #: The carrier's wire format; an engine that can speak it natively (Twilio mu-law) should, so the
    #: audio passes through untouched.
    carrier_format: AudioFormat | None = None


@dataclass(frozen=True, slots=True)
class AudioOut:
    """Agent audio in the session's ``output_format``; ``item_id`` names the response item it belongs to."""

    audio: bytes
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class CallerSpeechStarted:
    """The engine's VAD heard the caller start speaking (barge-in trigger)."""

    audio_start_ms: int = 0


@dataclass(frozen=True, slots=True)
class CallerSpeechStopped:
    audio_end_ms: int = 0


@dataclass(frozen=True, slots=True)
class UserTranscript:
    text: str
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    """Agent text: deltas while speaking (``final=False``), then the full item text (``final=True``)."""

    text: str
    item_id: str = ""
    final: bool = False


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """One response finished; ``usage`` is the vendor's usage object (tokens) for cost."""

    usage: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"
    response_id: str = ""


@dataclass(frozen=True, slots=True)
class EngineError:
    message: str
    fatal: bool = False


EngineEvent = (
    AudioOut
    | CallerSpeechStarted
    | CallerSpeechStopped
    | UserTranscript
    | AgentTranscript
    | ToolCall
    | ResponseDone
    | EngineError
)


class EngineSession(abc.ABC):
    """One call's live connection to the engine."""

    input_format: AudioFormat
    output_format: AudioFormat

    @abc.abstractmethod
    async def send_audio(self, audio: bytes) -> None:
        """Caller audio in ``input_format``."""

    @abc.abstractmethod
    async def say(self, text: str) -> None:
        """Have the agent say ``text`` now (the first message)."""

    @abc.abstractmethod
    async def send_user_text(self, text: str) -> None:
        """Inject a user message (e.g. ``[DTMF: 5]``) and let the agent respond."""

    @abc.abstractmethod
    async def interrupt(self, item_id: str, audio_end_ms: int) -> None:
        """Barge-in: stop the response and truncate ``item_id`` to what the caller heard."""

    @abc.abstractmethod
    async def send_tool_result(self, call_id: str, output: str) -> None:
        """Return a tool's output and let the agent continue."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[EngineEvent]:
        """Events until closed; raises PatterConnectionError if the connection drops."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Idempotent."""


class Engine(ProviderAttributes, abc.ABC):
    #: ``openai_realtime`` or ``elevenlabs_convai`` (the agent's provider mode).
    provider_mode: str = ""
    voice: str = ""
    model: str = ""

    @abc.abstractmethod
    async def connect(self, config: EngineConfig) -> EngineSession:
        """Open a session. Raises AuthenticationError / RateLimitError / PatterConnectionError."""
