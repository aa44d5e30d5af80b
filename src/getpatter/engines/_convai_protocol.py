"""ElevenLabs ConvAI wire details: audio format names, URLs, refusals, turn bookkeeping, payload parsing.

Kept apart from the engine and session (``elevenlabs_convai.py``) so each module has one job.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection

from getpatter._urls import endpoint
from getpatter.audio.format import MULAW_8K, AudioFormat
from getpatter.engines.base import (
    AgentTranscript,
    AudioOut,
    CallerSpeechStarted,
    EngineEvent,
    ResponseDone,
    ToolCall,
    UserTranscript,
)
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError

log = logging.getLogger(__name__)

VOICE_ID = re.compile(r"[A-Za-z0-9]{20}")


def format_name(fmt: AudioFormat) -> str:
    """Our format as ConvAI names it (``ulaw_8000``, ``pcm_16000``)."""
    if fmt.encoding == "mulaw":
        return f"ulaw_{fmt.sample_rate}"
    if fmt.encoding == "pcm16":
        return f"pcm_{fmt.sample_rate}"
    raise PatterConfigError(f"ElevenLabs ConvAI cannot carry {fmt.encoding} audio.")


def parse_format(name: str) -> AudioFormat | None:
    """``pcm_<rate>`` / ``ulaw_8000`` -> AudioFormat; anything else (mp3...) is not raw audio: None."""
    kind, _, rate = name.partition("_")
    if not rate.isdigit():
        return None
    if kind == "pcm":
        return AudioFormat("pcm16", int(rate))
    return MULAW_8K if name == "ulaw_8000" else None


def convai_url(base_url: str, path: str, scheme: Literal["ws", "http"]) -> str:
    """The conversation socket (``ws``) or the signed-URL REST endpoint (``http``) under ``base_url``."""
    bad_url = (
        f"ElevenLabsConvAI base_url={base_url!r} is not a URL; pass e.g. base_url='wss://api.elevenlabs.io'."
    )
    return endpoint(base_url, path, scheme=scheme, bad_url=bad_url)


def _refusal(status: int, body: str, header: Any) -> Exception:
    message = f"ElevenLabs ConvAI refused the conversation with HTTP {status}: {body[:200]}"
    if status in (401, 403):
        return AuthenticationError(message + ". Check the api_key / ELEVENLABS_API_KEY.")
    if status == 429:
        retry_after: float | None = None
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(header("retry-after", ""))
        return RateLimitError(message, retry_after=retry_after)
    return PatterConnectionError(message)


class _Turns:
    """Groups audio into agent turns and applies the stale-audio rules.

    ``item_id`` of a turn is the ``event_id`` of its first audio event: identical to the event id when the
    server numbers events per turn, and still one stable item per turn if it numbers every chunk. A turn
    ends at the next ``user_transcript`` / ``interruption`` / ``client_tool_call`` /
    ``agent_response_complete`` / second ``agent_response``, and then yields :class:`ResponseDone`
    (no usage: ConvAI is billed as a bundle) so the call layer can close the item. ``agent_response``
    text is held until its turn's first audio so both carry the same item id.
    """

    def __init__(self, emit: Callable[[EngineEvent], None]) -> None:
        self._emit = emit
        self.item: str | None = None
        self.has_text = False
        self.pending: str | None = None
        self.last_item = ""
        self.last_event = -1
        self.drop_through = -1  # audio with event_id <= this belongs to an interrupted turn
        self.muted: set[str] = set()

    def audio(self, event_id: int, data: bytes) -> None:
        self.last_event = max(self.last_event, event_id)
        if event_id <= self.drop_through:
            return
        if self.item is None:
            self.item = str(event_id)
        if self.item in self.muted:
            return
        self._emit(AudioOut(data, self.item))
        if self.pending is not None:
            self._emit(AgentTranscript(self.pending, self.item, final=True))
            self.pending = None

    def agent_text(self, text: str) -> None:
        if self.has_text:
            self.end_turn("completed")
        self.has_text = True
        if self.item is None:
            self.pending = text
        else:
            self._emit(AgentTranscript(text, self.item, final=True))

    def correction(self, text: str) -> None:
        """What was actually spoken of the interrupted turn: a final transcript for that (ended) item."""
        self._emit(AgentTranscript(text, self.last_item, final=True))

    def user_text(self, text: str) -> None:
        self.end_turn("completed")
        self._emit(UserTranscript(text))

    def interruption(self, event_id: int | None) -> None:
        self.drop_through = max(self.drop_through, self.last_event if event_id is None else event_id)
        self._emit(CallerSpeechStarted())
        self.end_turn("cancelled")

    def tool_call(self, call_id: str, name: str, arguments: str) -> None:
        self.end_turn("completed")
        self._emit(ToolCall(call_id, name, arguments))

    def end_turn(self, status: str) -> None:
        if self.pending is not None:
            self._emit(AgentTranscript(self.pending, "", final=True))
        if self.item is not None or self.has_text:
            self._emit(ResponseDone(status=status, response_id=self.item or ""))
            self.last_item = self.item or ""
        self.item, self.has_text, self.pending = None, False, None

    def mute(self, item_id: str) -> None:
        """Client-side barge-in: if the server has not already interrupted ``item_id``, drop everything
        received so far and the rest of the current turn."""
        with contextlib.suppress(ValueError):
            if int(item_id) <= self.drop_through:
                return
        self.drop_through = max(self.drop_through, self.last_event)
        self.muted.add(item_id)
        if self.item is not None:
            self.muted.add(self.item)

    def deliverable(self, event: EngineEvent) -> bool:
        """Checked again at yield time, so audio queued before an interruption is never played."""
        if not isinstance(event, AudioOut):
            return True
        return event.item_id not in self.muted and int(event.item_id) > self.drop_through


PAYLOAD_KEYS = {
    "conversation_initiation_metadata": "conversation_initiation_metadata_event",
    "audio": "audio_event",
    "agent_response": "agent_response_event",
    "agent_response_correction": "agent_response_correction_event",
    "user_transcript": "user_transcription_event",
    "interruption": "interruption_event",
    "ping": "ping_event",
    "client_tool_call": "client_tool_call",
}


def _payload(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key) if key else None
    return value if isinstance(value, dict) else {}


def _describe(ws: ClientConnection) -> str:
    if ws.close_code is None or ws.close_code == 1006:
        return "connection lost without a close frame"
    return f"close {ws.close_code} {ws.close_reason!r}"
