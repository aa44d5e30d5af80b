"""OpenAI Realtime wire shapes, without I/O: the ``session.update`` we send and the server events we map.

Kept apart from the socket code so the protocol rules (``shared/protocols/openai-realtime.md``) are in
one place and testable alone:

* We speak the **GA** shape (``session.type``, nested ``audio.input``/``audio.output`` format objects).
* We *receive* GA and beta event names alike (doc section 7): Azure's legacy preview and some
  "OpenAI-compatible" servers still send ``response.audio.delta`` and friends.
* A tool call is announced once per ``call_id`` whichever event reveals it first
  (``function_call_arguments.done``, ``output_item.done`` or ``response.done``).
* Vendor ``error`` events become :class:`EngineError`; only session-level failures are ``fatal``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from getpatter.audio.format import ALAW_8K, MULAW_8K, PCM16_24K, AudioFormat
from getpatter.engines.base import (
    AgentTranscript,
    AudioOut,
    CallerSpeechStarted,
    CallerSpeechStopped,
    EngineError,
    EngineEvent,
    ResponseDone,
    ToolCall,
    UserTranscript,
)

log = logging.getLogger(__name__)

#: Server VAD defaults for phone calls (API.md A.7): quicker end of turn than the vendor's 500 ms.
DEFAULT_TURN_DETECTION: Final[Mapping[str, Any]] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 300,
    "create_response": True,
    "interrupt_response": True,
}

#: Beta event names -> their GA equivalents (doc section 7). Everything else is already GA.
BETA_TO_GA: Final[Mapping[str, str]] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}

#: Error codes after which the session cannot go on (the rest are per-request and recoverable).
_FATAL_CODES: Final = frozenset(
    {
        "insufficient_quota",
        "invalid_api_key",
        "session_expired",
        "beta_api_shape_disabled",
        "account_deactivated",
    }
)
_FATAL_TYPES: Final = frozenset({"authentication_error", "permission_error"})
_MAX_TRACKED_ITEMS: Final = 64


def engine_formats(carrier: AudioFormat | None) -> AudioFormat:
    """The engine-side audio format: G.711 at 8 kHz when the carrier speaks it (pass-through), else
    PCM16 24 kHz (the only PCM rate the Realtime API takes). Input and output use the same one."""
    for g711 in (MULAW_8K, ALAW_8K):
        if carrier == g711:
            return g711
    return PCM16_24K


def ga_format(fmt: AudioFormat) -> dict[str, Any]:
    """The GA ``format`` object for ``fmt`` (``audio/pcmu``, ``audio/pcma`` or ``audio/pcm`` @ 24 kHz)."""
    if fmt == MULAW_8K:
        return {"type": "audio/pcmu"}
    if fmt == ALAW_8K:
        return {"type": "audio/pcma"}
    return {"type": "audio/pcm", "rate": 24000}


def tool_schema(tool: Mapping[str, Any]) -> dict[str, Any]:
    """``{"name","description","parameters"}`` (or an OpenAI chat-style ``{"function": {...}}``) -> the
    flat Realtime tool object."""
    spec: Mapping[str, Any] = tool["function"] if isinstance(tool.get("function"), Mapping) else tool
    return {
        "type": "function",
        "name": spec["name"],
        "description": spec.get("description", ""),
        "parameters": spec.get("parameters") or {"type": "object", "properties": {}},
    }


def session_update(
    *,
    instructions: str,
    voice: str,
    fmt: AudioFormat,
    tools: Sequence[Mapping[str, Any]],
    turn_detection: Mapping[str, Any] | None,
    transcription_model: str | None,
    language: str,
    noise_reduction: str | None,
) -> dict[str, Any]:
    """The GA ``session.update`` event body. ``turn_detection=None`` sends ``null`` (no server VAD)."""
    audio_in: dict[str, Any] = {"format": ga_format(fmt), "turn_detection": turn_detection}
    if transcription_model:
        transcription: dict[str, Any] = {"model": transcription_model}
        if language:
            transcription["language"] = language
        audio_in["transcription"] = transcription
    if noise_reduction:
        audio_in["noise_reduction"] = {"type": noise_reduction}
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": instructions,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": {"format": ga_format(fmt), "voice": voice}},
            "tools": [tool_schema(t) for t in tools],
            "tool_choice": "auto",
        },
    }


def error_event(error: Mapping[str, Any], failed_event: str = "") -> EngineError:
    """A vendor ``error`` object -> :class:`EngineError`; the message names the failed client event."""
    code = str(error.get("code") or "")
    kind = str(error.get("type") or "")
    text = str(error.get("message") or "unknown error")
    where = f" (on {failed_event})" if failed_event else ""
    label = code or kind or "error"
    fatal = code in _FATAL_CODES or kind in _FATAL_TYPES
    return EngineError(f"OpenAI Realtime {label}{where}: {text}", fatal=fatal)


class EventMapper:
    """Turns decoded server events into engine events, keeping the little state that needs:
    tool names (beta omits ``name`` on ``arguments.done``), which calls were already announced, and how
    much audio each output item delivered (so a truncate never claims more than was generated)."""

    def __init__(self, output_format: AudioFormat) -> None:
        self._format = output_format
        self._tool_names: dict[str, str] = {}  # call_id or item_id -> function name
        self._announced: OrderedDict[str, None] = OrderedDict()
        self._audio_bytes: OrderedDict[str, int] = OrderedDict()
        #: client ``event_id`` -> its ``type``, to say which request an ``error`` refers to.
        self.sent_events: OrderedDict[str, str] = OrderedDict()

    def audio_ms(self, item_id: str) -> int | None:
        """Whole milliseconds of audio received for ``item_id``, or None if none arrived."""
        n = self._audio_bytes.get(item_id)
        return None if n is None else int(self._format.duration_ms(n))

    def truncated(self, item_id: str, audio_end_ms: int) -> None:
        """After a truncate the item holds only ``audio_end_ms`` of audio; later truncates clamp to it."""
        if item_id in self._audio_bytes:
            self._audio_bytes[item_id] = self._format.bytes_for_ms(audio_end_ms)

    def remember_sent(self, event_id: str, kind: str) -> None:
        self.sent_events[event_id] = kind
        _trim(self.sent_events)

    def handle(self, message: Mapping[str, Any]) -> list[EngineEvent]:
        kind = str(message.get("type", ""))
        kind = BETA_TO_GA.get(kind, kind)
        handler = _HANDLERS.get(kind)
        return handler(self, message) if handler is not None else []

    # -- handlers ------------------------------------------------------------------------------------

    def _audio_delta(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        item_id = str(m.get("item_id") or "")
        try:
            audio = base64.b64decode(str(m.get("delta") or ""), validate=True)
        except (binascii.Error, ValueError):
            log.warning("OpenAI Realtime sent an audio delta that is not base64; dropped")
            return []
        if not audio:
            return []
        self._audio_bytes[item_id] = self._audio_bytes.pop(item_id, 0) + len(audio)
        _trim(self._audio_bytes)
        return [AudioOut(audio, item_id)]

    def _speech_started(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        return [CallerSpeechStarted(_int(m.get("audio_start_ms")))]

    def _speech_stopped(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        return [CallerSpeechStopped(_int(m.get("audio_end_ms")))]

    def _user_transcript(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        text = str(m.get("transcript") or "").strip()
        return [UserTranscript(text, str(m.get("item_id") or ""))] if text else []

    def _transcription_failed(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        error = m.get("error")
        detail = error if isinstance(error, Mapping) else {}
        return [error_event(detail, "input audio transcription")]

    def _agent_delta(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        delta = str(m.get("delta") or "")
        return [AgentTranscript(delta, str(m.get("item_id") or ""), final=False)] if delta else []

    def _agent_done(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        text = m.get("transcript") if "transcript" in m else m.get("text")
        return [AgentTranscript(str(text or ""), str(m.get("item_id") or ""), final=True)]

    def _item_added(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        item = m.get("item")
        if isinstance(item, Mapping) and item.get("type") == "function_call":
            name = str(item.get("name") or "")
            for key in (item.get("call_id"), item.get("id")):
                if key and name:
                    self._tool_names[str(key)] = name
            _trim(self._tool_names)
        return []

    def _arguments_done(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        call_id = str(m.get("call_id") or "")
        name = str(
            m.get("name")
            or self._tool_names.get(call_id)
            or self._tool_names.get(str(m.get("item_id") or ""))
            or ""
        )
        return self._tool_call(call_id, name, m.get("arguments"))

    def _item_done(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        item = m.get("item")
        if isinstance(item, Mapping) and item.get("type") == "function_call":
            return self._tool_call(
                str(item.get("call_id") or ""), str(item.get("name") or ""), item.get("arguments")
            )
        return []

    def _response_done(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        response = m.get("response")
        r: Mapping[str, Any] = response if isinstance(response, Mapping) else {}
        out: list[EngineEvent] = []
        output = r.get("output")
        for item in output if isinstance(output, list) else []:
            if isinstance(item, Mapping) and item.get("type") == "function_call":
                out += self._tool_call(
                    str(item.get("call_id") or ""), str(item.get("name") or ""), item.get("arguments")
                )
        usage = r.get("usage")
        out.append(
            ResponseDone(
                usage=dict(usage) if isinstance(usage, Mapping) else {},
                status=str(r.get("status") or "completed"),
                response_id=str(r.get("id") or ""),
            )
        )
        return out

    def _error(self, m: Mapping[str, Any]) -> list[EngineEvent]:
        error = m.get("error")
        detail: Mapping[str, Any] = error if isinstance(error, Mapping) else {}
        failed = self.sent_events.get(str(detail.get("event_id") or ""), "")
        return [error_event(detail, failed)]

    def _tool_call(self, call_id: str, name: str, arguments: object) -> list[EngineEvent]:
        if not call_id or call_id in self._announced:
            return []
        name = name or self._tool_names.get(call_id, "")
        self._announced[call_id] = None
        _trim(self._announced)
        return [ToolCall(call_id, name, arguments if isinstance(arguments, str) else "{}")]


_HANDLERS: Final = {
    "response.output_audio.delta": EventMapper._audio_delta,
    "input_audio_buffer.speech_started": EventMapper._speech_started,
    "input_audio_buffer.speech_stopped": EventMapper._speech_stopped,
    "conversation.item.input_audio_transcription.completed": EventMapper._user_transcript,
    "conversation.item.input_audio_transcription.failed": EventMapper._transcription_failed,
    "response.output_audio_transcript.delta": EventMapper._agent_delta,
    "response.output_audio_transcript.done": EventMapper._agent_done,
    "response.output_text.delta": EventMapper._agent_delta,
    "response.output_text.done": EventMapper._agent_done,
    "response.output_item.added": EventMapper._item_added,
    "response.function_call_arguments.done": EventMapper._arguments_done,
    "response.output_item.done": EventMapper._item_done,
    "response.done": EventMapper._response_done,
    "error": EventMapper._error,
}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _trim(d: dict[str, Any]) -> None:
    """Bound per-call bookkeeping: drop the oldest entries beyond a few dozen items."""
    while len(d) > _MAX_TRACKED_ITEMS:
        del d[next(iter(d))]
