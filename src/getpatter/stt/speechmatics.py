"""Speechmatics real-time recognition over its WebSocket (``/v2``; protocols/stt.md section 5).

Contract:

* ``open()`` connects with ``Authorization: Bearer``, sends ``StartRecognition`` (:meth:`SpeechmaticsSTT.
  start_message`) and waits for ``RecognitionStarted``; an ``Error`` there raises (``not_authorised`` ->
  AuthenticationError, ``quota_exceeded`` -> RateLimitError, else PatterConnectionError).
* Audio goes out as binary frames (each one is an ``AddAudio``; we count them for ``EndOfStream``'s
  ``last_seq_no``). ``AddPartialTranscript`` / ``AddTranscript`` become interim Transcripts of the turn so
  far; ``EndOfUtterance`` closes the turn with one ``Transcript(turn_text, True, end_of_turn=True)``.
* ``turn_detection_mode``: ``"adaptive"`` (default) = server end-of-utterance on silence with flexible
  ``max_delay``; ``"fixed"`` = the same with fixed ``max_delay``; ``"external"`` = no server endpointing,
  the pipeline's VAD drives ``finalize()`` (``needs_vad_end_of_turn``). ``finalize()`` sends
  ``ForceEndOfUtterance``. ``close()`` sends ``EndOfStream`` and reads up to ``EndOfTranscript``.
* ``encoding``/``sample_rate`` left unset follow the carrier (:meth:`SpeechmaticsSTT.for_wire`): raw
  ``mulaw`` 8 kHz on Twilio (and Telnyx PCMU), ``pcm_s16le`` 16 kHz on Telnyx L16. Speechmatics has no
  A-law, so on an A-law carrier the provider keeps pcm_s16le 16 kHz and the call converts, as before.
  ``for_twilio()`` or an explicit ``encoding``/``sample_rate`` pins the format.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal, TypedDict, Unpack

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from getpatter._provider import with_attributes
from getpatter.audio.format import AudioFormat, Encoding
from getpatter.errors import PatterConfigError, PatterConnectionError, PatterError
from getpatter.stt._ws import WsSTTStream, classify_failure, connect_ws, parse_json, ws_url
from getpatter.stt.base import STT as BaseSTT
from getpatter.stt.base import Transcript

__all__ = ["STT", "SpeechmaticsSTT", "SpeechmaticsSTTStream", "TurnDetectionMode"]

ENV_VAR = "SPEECHMATICS_API_KEY"
DEFAULT_BASE_URL = "wss://eu2.rt.speechmatics.com"
WS_PATH = "/v2"
TurnDetectionMode = Literal["adaptive", "fixed", "external"]
_MODES = ("adaptive", "fixed", "external")
_ENCODINGS: dict[str, Encoding] = {"pcm_s16le": "pcm16", "mulaw": "mulaw"}
_ERROR_STATUS = {"not_authorised": 401, "not_allowed": 403, "quota_exceeded": 429}


class _Options(TypedDict, total=False):
    """Every SpeechmaticsSTT option except the audio format (for :meth:`SpeechmaticsSTT.for_twilio`)."""

    language: str
    turn_detection_mode: TurnDetectionMode
    enable_diarization: bool
    include_partials: bool
    operating_point: str
    max_delay: float
    end_of_utterance_silence_trigger: float
    base_url: str
    open_timeout_s: float
    close_timeout_s: float


def _error(message: dict[str, Any], vendor: str) -> PatterError:
    kind = str(message.get("type") or "error")
    reason = str(message.get("reason") or "unknown error")
    return classify_failure(vendor, _ERROR_STATUS.get(kind), f"{kind}: {reason}", env_var=ENV_VAR)


class SpeechmaticsSTT(BaseSTT):
    """Speechmatics streaming recognition; ``provider_id="speechmatics"``."""

    provider_id = "speechmatics"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        language: str = "en",
        turn_detection_mode: TurnDetectionMode = "adaptive",
        sample_rate: int | None = None,
        encoding: str | None = None,
        enable_diarization: bool = False,
        include_partials: bool = True,
        operating_point: str = "enhanced",
        max_delay: float = 1.0,
        end_of_utterance_silence_trigger: float = 0.5,
        base_url: str = DEFAULT_BASE_URL,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 3.0,
    ) -> None:
        """``encoding``/``sample_rate`` left unset: pcm_s16le 16 kHz on its own, and on a call the carrier's
        own format when Speechmatics takes it (mu-law 8 kHz on Twilio); set either to pin the format."""
        self.format_pinned = encoding is not None or sample_rate is not None
        encoding = "pcm_s16le" if encoding is None else encoding
        sample_rate = 16000 if sample_rate is None else sample_rate
        key = api_key if api_key is not None else os.environ.get(ENV_VAR)
        if not key:
            raise PatterConfigError(
                f"SpeechmaticsSTT needs an API key: pass api_key=... or set the {ENV_VAR} environment "
                "variable."
            )
        if turn_detection_mode not in _MODES:
            raise PatterConfigError(
                f"SpeechmaticsSTT turn_detection_mode={turn_detection_mode!r} must be one of {list(_MODES)}."
            )
        if encoding not in _ENCODINGS:
            raise PatterConfigError(
                f"SpeechmaticsSTT encoding={encoding!r} is not supported; use one of {sorted(_ENCODINGS)}."
            )
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise PatterConfigError(
                f"SpeechmaticsSTT sample_rate={sample_rate!r} must be a positive int (Hz)."
            )
        if not 0.7 <= max_delay <= 4.0:
            raise PatterConfigError(
                f"SpeechmaticsSTT max_delay={max_delay!r} must be within 0.7..4.0 seconds."
            )
        if not 0.0 < end_of_utterance_silence_trigger <= 2.0:
            raise PatterConfigError(
                "SpeechmaticsSTT end_of_utterance_silence_trigger must be in (0, 2] seconds."
            )
        if operating_point not in ("standard", "enhanced"):
            raise PatterConfigError("SpeechmaticsSTT operating_point must be 'standard' or 'enhanced'.")
        if open_timeout_s <= 0 or close_timeout_s <= 0:
            raise PatterConfigError("SpeechmaticsSTT open_timeout_s and close_timeout_s must be > 0 seconds.")
        self._api_key = key
        self.model = operating_point
        self.language = language
        self.turn_detection_mode = turn_detection_mode
        self.needs_vad_end_of_turn = turn_detection_mode == "external"
        self.sample_rate = sample_rate
        self.encoding = encoding
        self.enable_diarization = enable_diarization
        self.include_partials = include_partials
        self.operating_point = operating_point
        self.max_delay = max_delay
        self.end_of_utterance_silence_trigger = end_of_utterance_silence_trigger
        self.base_url = base_url
        self.url = ws_url(base_url, WS_PATH, owner="SpeechmaticsSTT")
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.input_format = AudioFormat(_ENCODINGS[encoding], sample_rate)

    @classmethod
    def for_twilio(cls, api_key: str | None = None, **options: Unpack[_Options]) -> SpeechmaticsSTT:
        """Mu-law 8 kHz in, so Twilio media payloads pass straight through without transcoding."""
        return cls(api_key, encoding="mulaw", sample_rate=8000, **options)

    def _wire_native(self, wire: AudioFormat) -> SpeechmaticsSTT | None:
        """Speechmatics takes raw pcm_s16le and mulaw at the carrier's rate; no A-law (None: converted)."""
        name = next((name for name, enc in _ENCODINGS.items() if enc == wire.encoding), None)
        if name is None:
            return None
        return with_attributes(self, encoding=name, sample_rate=wire.sample_rate, input_format=wire)

    def start_message(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "language": self.language,
            "enable_partials": self.include_partials,
            "max_delay": self.max_delay,
            "operating_point": self.operating_point,
        }
        if self.turn_detection_mode != "external":
            config["max_delay_mode"] = "flexible" if self.turn_detection_mode == "adaptive" else "fixed"
            config["conversation_config"] = {
                "end_of_utterance_silence_trigger": self.end_of_utterance_silence_trigger
            }
        if self.enable_diarization:
            config["diarization"] = "speaker"
        return {
            "message": "StartRecognition",
            "audio_format": {"type": "raw", "encoding": self.encoding, "sample_rate": self.sample_rate},
            "transcription_config": config,
        }

    def __repr__(self) -> str:
        return (
            f"SpeechmaticsSTT(language={self.language!r}, turn_detection_mode={self.turn_detection_mode!r}, "
            f"encoding={self.encoding!r}, sample_rate={self.sample_rate}, base_url={self.base_url!r})"
        )

    async def open(self) -> SpeechmaticsSTTStream:
        ws = await connect_ws(
            self.url,
            {"Authorization": f"Bearer {self._api_key}"},
            vendor="Speechmatics",
            env_var=ENV_VAR,
            secrets=(self._api_key,),
            open_timeout_s=self.open_timeout_s,
            close_timeout_s=self.close_timeout_s,
        )
        try:
            session_id = await asyncio.wait_for(self._start(ws), self.open_timeout_s)
        except BaseException:
            await ws.close()
            raise
        return SpeechmaticsSTTStream(ws, self.input_format, session_id, close_timeout_s=self.close_timeout_s)

    async def _start(self, ws: ClientConnection) -> str:
        """StartRecognition, then wait for RecognitionStarted (Info/Warning may come first)."""
        try:
            await ws.send(orjson.dumps(self.start_message()).decode())
            while True:
                raw = await ws.recv()
                message = parse_json(raw, "Speechmatics") if isinstance(raw, str) else None
                kind = message.get("message") if message else None
                if message is None or kind in ("Info", "Warning"):
                    continue
                if kind == "RecognitionStarted":
                    return str(message.get("id") or "")
                if kind == "Error":
                    raise _error(message, "Speechmatics")
                raise PatterConnectionError(f"Speechmatics: unexpected {kind!r} before RecognitionStarted.")
        except ConnectionClosed as exc:
            raise PatterConnectionError(f"Speechmatics closed the connection during setup: {exc}") from None


class SpeechmaticsSTTStream(WsSTTStream):
    """One live Speechmatics session; ``session_id`` from ``RecognitionStarted``, ``acked_seq_no`` from
    the last ``AudioAdded``."""

    vendor = "Speechmatics"

    def __init__(
        self, ws: ClientConnection, input_format: AudioFormat, session_id: str, *, close_timeout_s: float
    ) -> None:
        self.session_id = session_id
        self.acked_seq_no = 0
        self._finals: list[str] = []
        self._confidences: list[float] = []
        self._last_interim = ""
        super().__init__(ws, input_format, close_timeout_s=close_timeout_s)

    async def _send_finalize(self) -> None:
        await self._send_json({"message": "ForceEndOfUtterance"})

    async def _send_close(self) -> None:
        await self._send_json({"message": "EndOfStream", "last_seq_no": self.frames_sent})

    def _handle(self, raw: str) -> PatterError | None:
        message = parse_json(raw, self.vendor)
        if message is None:
            return None
        kind = message.get("message")
        if kind == "AddPartialTranscript":
            self._interim(_text(message))
        elif kind == "AddTranscript":
            text = _text(message)
            if text:
                self._finals.append(text)
                self._confidences += _confidences(message)
                self._interim("")
        elif kind in ("EndOfUtterance", "EndOfTranscript"):
            self._end_turn()
        elif kind == "AudioAdded":
            seq = message.get("seq_no")
            self.acked_seq_no = seq if isinstance(seq, int) else self.acked_seq_no
        elif kind == "Error":
            return _error(message, self.vendor)
        return None

    def _interim(self, partial: str) -> None:
        text = " ".join([*self._finals, partial] if partial else self._finals)
        if text and text != self._last_interim:
            self._emit(Transcript(text, is_final=False))
        self._last_interim = text

    def _end_turn(self) -> None:
        text = " ".join(self._finals)
        if text:
            confidences = self._confidences
            confidence = sum(confidences) / len(confidences) if confidences else 0.0
            self._emit(Transcript(text, is_final=True, end_of_turn=True, confidence=confidence))
        self._finals.clear()
        self._confidences.clear()
        self._last_interim = ""


def _text(message: dict[str, Any]) -> str:
    metadata = message.get("metadata")
    return str(metadata.get("transcript") or "").strip() if isinstance(metadata, dict) else ""


def _confidences(message: dict[str, Any]) -> list[float]:
    out: list[float] = []
    for result in message.get("results") or []:
        alternatives = result.get("alternatives") if isinstance(result, dict) else None
        if isinstance(alternatives, list) and alternatives and isinstance(alternatives[0], dict):
            value = alternatives[0].get("confidence")
            if isinstance(value, int | float) and result.get("type") == "word":
                out.append(float(value))
    return out


STT = SpeechmaticsSTT
