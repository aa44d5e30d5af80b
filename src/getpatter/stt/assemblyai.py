"""AssemblyAI Universal Streaming v3 over its WebSocket (``/v3/ws``; protocols/stt.md section 2).

Contract:

* Audio goes out as binary frames, untouched, each 50..1000 ms as the API demands (the last frame before a
  flush is padded with silence up to 50 ms). ``for_twilio()`` takes Twilio's mu-law 8 kHz as is.
* ``Turn`` messages become interim Transcripts (built from ``words``, so in-progress words show) and one
  final ``end_of_turn`` Transcript per turn. With ``format_turns=True`` the final is the formatted Turn
  that follows the raw end-of-turn one.
* ``finalize()`` sends ``ForceEndpoint`` (the server ends the turn now); ``close()`` sends ``Terminate``
  and reads up to ``Termination`` -- always terminate: AssemblyAI bills the session's duration.
* Errors: HTTP refusals and auth close codes -> AuthenticationError / RateLimitError; an ``Error`` message
  or any other unrequested close -> PatterConnectionError (see :mod:`getpatter.stt._ws`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import orjson

from getpatter._provider import with_attributes
from getpatter.audio.format import AudioFormat, Encoding
from getpatter.errors import PatterConfigError, PatterError, RateLimitError
from getpatter.stt._ws import WsSTTStream, classify_failure, connect_ws, parse_json, ws_url
from getpatter.stt.base import STT as BaseSTT
from getpatter.stt.base import SpeechStarted, Transcript

__all__ = ["STT", "AssemblyAISTT", "AssemblyAISTTStream"]

ENV_VAR = "ASSEMBLYAI_API_KEY"
DEFAULT_BASE_URL = "wss://streaming.assemblyai.com"
WS_PATH = "/v3/ws"
ENGLISH_MODEL = "universal-streaming-english"
MULTILINGUAL_MODEL = "universal-streaming-multilingual"
_ENCODINGS: dict[str, Encoding] = {"pcm_s16le": "pcm16", "pcm_mulaw": "mulaw"}


class _Options(TypedDict, total=False):
    language: str | None
    model: str | None
    format_turns: bool
    end_of_turn_confidence_threshold: float | None
    min_end_of_turn_silence_when_confident: int | None
    max_turn_silence: int | None
    keyterms_prompt: Sequence[str] | None
    base_url: str
    open_timeout_s: float
    close_timeout_s: float


def _bool(value: bool) -> str:
    return "true" if value else "false"


class AssemblyAISTT(BaseSTT):
    """AssemblyAI streaming recognition; configuration only, each :meth:`open` is one call's session.

    ``model=None`` picks ``universal-streaming-english`` for English (or no language) and
    ``universal-streaming-multilingual`` otherwise. Turn-detection knobs left at None use the vendor
    defaults and are not sent.
    """

    provider_id = "assemblyai"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        language: str | None = "en",
        model: str | None = None,
        encoding: str | None = None,
        sample_rate: int | None = None,
        format_turns: bool = False,
        end_of_turn_confidence_threshold: float | None = None,
        min_end_of_turn_silence_when_confident: int | None = None,
        max_turn_silence: int | None = None,
        keyterms_prompt: Sequence[str] | None = None,
        base_url: str = DEFAULT_BASE_URL,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 3.0,
    ) -> None:
        # Left unset: pcm_s16le 16 kHz on its own, the carrier's format on a call (for_wire).
        self.format_pinned = encoding is not None or sample_rate is not None
        encoding = "pcm_s16le" if encoding is None else encoding
        sample_rate = 16000 if sample_rate is None else sample_rate
        key = api_key if api_key is not None else os.environ.get(ENV_VAR)
        if not key:
            raise PatterConfigError(
                f"AssemblyAISTT needs an API key: pass api_key=... or set the {ENV_VAR} environment variable."
            )
        if encoding not in _ENCODINGS:
            raise PatterConfigError(
                f"AssemblyAISTT encoding={encoding!r} is not supported; use one of {sorted(_ENCODINGS)}."
            )
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise PatterConfigError(f"AssemblyAISTT sample_rate={sample_rate!r} must be a positive int (Hz).")
        threshold = end_of_turn_confidence_threshold
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise PatterConfigError(
                f"AssemblyAISTT end_of_turn_confidence_threshold={threshold!r} must be between 0 and 1."
            )
        for name, ms in (
            ("min_end_of_turn_silence_when_confident", min_end_of_turn_silence_when_confident),
            ("max_turn_silence", max_turn_silence),
        ):
            if ms is not None and (isinstance(ms, bool) or not isinstance(ms, int) or ms < 0):
                raise PatterConfigError(f"AssemblyAISTT {name}={ms!r} must be an int >= 0 (ms).")
        if open_timeout_s <= 0 or close_timeout_s <= 0:
            raise PatterConfigError("AssemblyAISTT open_timeout_s and close_timeout_s must be > 0 seconds.")
        self._api_key = key
        self.language = language
        english = language is None or language.lower().startswith("en")
        self.model = model or (ENGLISH_MODEL if english else MULTILINGUAL_MODEL)
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.format_turns = format_turns
        self.end_of_turn_confidence_threshold = threshold
        self.min_end_of_turn_silence_when_confident = min_end_of_turn_silence_when_confident
        self.max_turn_silence = max_turn_silence
        self.keyterms_prompt = list(keyterms_prompt) if keyterms_prompt else None
        self.base_url = base_url
        self.url = ws_url(base_url, WS_PATH, owner="AssemblyAISTT")
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.input_format = AudioFormat(_ENCODINGS[encoding], sample_rate)

    @classmethod
    def for_twilio(cls, api_key: str | None = None, **options: Unpack[_Options]) -> AssemblyAISTT:
        """Mu-law 8 kHz in, so Twilio media payloads pass straight through without transcoding."""
        return cls(api_key, encoding="pcm_mulaw", sample_rate=8000, **options)

    def _wire_native(self, wire: AudioFormat) -> AssemblyAISTT | None:
        """AssemblyAI takes pcm_s16le at any rate and pcm_mulaw (telephony, 8 kHz)."""
        if wire.encoding == "pcm16":
            return with_attributes(
                self, encoding="pcm_s16le", sample_rate=wire.sample_rate, input_format=wire
            )
        if wire.encoding == "mulaw" and wire.sample_rate == 8000:
            return with_attributes(self, encoding="pcm_mulaw", sample_rate=8000, input_format=wire)
        return None

    def query_params(self) -> list[tuple[str, str]]:
        """The handshake query: required fields first, optional knobs only when set."""
        params = [
            ("sample_rate", str(self.sample_rate)),
            ("encoding", self.encoding),
            ("speech_model", self.model),
            ("format_turns", _bool(self.format_turns)),
        ]
        if self.end_of_turn_confidence_threshold is not None:
            params.append(("end_of_turn_confidence_threshold", f"{self.end_of_turn_confidence_threshold:g}"))
        if self.min_end_of_turn_silence_when_confident is not None:
            params.append(
                ("min_end_of_turn_silence_when_confident", str(self.min_end_of_turn_silence_when_confident))
            )
        if self.max_turn_silence is not None:
            params.append(("max_turn_silence", str(self.max_turn_silence)))
        if self.keyterms_prompt:
            params.append(("keyterms_prompt", orjson.dumps(self.keyterms_prompt).decode()))
        return params

    def __repr__(self) -> str:
        return (
            f"AssemblyAISTT(model={self.model!r}, encoding={self.encoding!r}, "
            f"sample_rate={self.sample_rate}, base_url={self.base_url!r})"
        )

    async def open(self) -> AssemblyAISTTStream:
        ws = await connect_ws(
            f"{self.url}?{urlencode(self.query_params())}",
            {"Authorization": self._api_key},
            vendor="AssemblyAI",
            env_var=ENV_VAR,
            secrets=(self._api_key,),
            open_timeout_s=self.open_timeout_s,
            close_timeout_s=self.close_timeout_s,
        )
        return AssemblyAISTTStream(ws, self.input_format, self.format_turns, self.close_timeout_s)


class AssemblyAISTTStream(WsSTTStream):
    """One live AssemblyAI session. ``session_id`` comes from ``Begin``; ``vendor_audio_seconds`` from
    ``Termination`` (None until the session ended cleanly)."""

    vendor = "AssemblyAI"

    def __init__(
        self, ws: Any, input_format: AudioFormat, format_turns: bool, close_timeout_s: float
    ) -> None:
        self.session_id: str | None = None
        self.vendor_audio_seconds: float | None = None
        self._format_turns = format_turns
        self._turn_open = False
        super().__init__(
            ws,
            input_format,
            close_timeout_s=close_timeout_s,
            min_frame_ms=50.0,
            max_frame_ms=1000.0,
            pad_last_frame=True,
        )

    async def _send_finalize(self) -> None:
        await self._send_json({"type": "ForceEndpoint"})

    async def _send_close(self) -> None:
        await self._send_json({"type": "Terminate"})

    def _close_error(self, code: int | None, reason: str) -> PatterError:
        lowered = reason.lower()
        if code in (1008, 4001, 4003) or "unauthori" in lowered or "api key" in lowered:
            status: int | None = 401
        elif code == 4029 or "too many" in lowered or "rate limit" in lowered:
            status = 429
        else:
            return super()._close_error(code, reason)
        return classify_failure(self.vendor, status, f"closed ({code} {reason!r})", env_var=ENV_VAR)

    def _handle(self, raw: str) -> PatterError | None:
        message = parse_json(raw, self.vendor)
        if message is None:
            return None
        kind = message.get("type")
        if kind == "Turn":
            self._on_turn(message)
        elif kind == "SpeechStarted":
            self._emit(SpeechStarted())
        elif kind == "Begin":
            self.session_id = str(message.get("id") or "") or None
        elif kind == "Termination":
            seconds = message.get("audio_duration_seconds")
            self.vendor_audio_seconds = float(seconds) if isinstance(seconds, int | float) else None
        elif kind == "Error":
            code = message.get("error_code")
            error = classify_failure(
                self.vendor, None, f"error {code}: {message.get('error') or 'unknown'}", env_var=ENV_VAR
            )
            return RateLimitError(str(error)) if code == 4029 else error
        return None

    def _on_turn(self, message: dict[str, Any]) -> None:
        words = [w for w in message.get("words") or [] if isinstance(w, dict)]
        end_of_turn = bool(message.get("end_of_turn"))
        if end_of_turn:
            if self._format_turns and not message.get("turn_is_formatted"):
                return  # the formatted copy of this turn follows; it is the final
            text = str(message.get("transcript") or "").strip()
            confidences = [
                float(w["confidence"]) for w in words if isinstance(w.get("confidence"), int | float)
            ]
            confidence = sum(confidences) / len(confidences) if confidences else 0.0
            if text or self._turn_open:
                self._emit(Transcript(text, is_final=True, end_of_turn=True, confidence=confidence))
            self._turn_open = False
            return
        text = " ".join(str(w.get("text") or "").strip() for w in words).strip()
        if text:
            self._turn_open = True
            self._emit(Transcript(text, is_final=False))


STT = AssemblyAISTT
