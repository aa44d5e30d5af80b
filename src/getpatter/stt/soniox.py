"""Soniox real-time recognition over ``/transcribe-websocket`` (protocols/stt.md section 4).

Contract:

* Auth is ``Authorization: Bearer`` on the upgrade (the key is never put in the config message); the first
  text frame is the JSON config (:meth:`SonioxSTT.config`), then binary audio, untouched.
* Soniox streams sub-word *tokens*: final ones once, non-final ones re-sent and revised. The stream joins
  token texts as-is (spaces live inside tokens) and yields an interim Transcript of the turn so far (all
  finals + current non-finals) whenever it changes. The special final token ``<end>`` (endpoint
  detection) or ``<fin>`` (answer to ``finalize()``) closes the turn: one
  ``Transcript(turn_text, is_final=True, end_of_turn=True)``.
* ``{"type": "keepalive"}`` goes out when no audio flowed for ``keepalive_interval_s``; ``close()`` sends
  the empty end-of-audio frame and reads up to ``finished``. ``{"error_code", "error_message"}`` maps
  onto our errors (401/403 auth, 429 rate limit, else connection). See :mod:`getpatter.stt._ws`.
* ``audio_format``/``sample_rate`` left unset follow the carrier (:meth:`SonioxSTT.for_wire`): Soniox takes
  raw ``mulaw`` and ``alaw`` as well as ``pcm_s16le``, so Twilio's mu-law 8 kHz goes out untouched;
  ``for_twilio()`` or an explicit ``audio_format``/``sample_rate`` pins the format.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

import orjson
from websockets.asyncio.client import ClientConnection

from getpatter._provider import with_attributes
from getpatter.audio.format import AudioFormat, Encoding
from getpatter.errors import PatterConfigError, PatterError
from getpatter.stt._ws import WsSTTStream, classify_failure, connect_ws, parse_json, ws_url
from getpatter.stt.base import STT as BaseSTT
from getpatter.stt.base import Transcript

__all__ = ["STT", "SonioxSTT", "SonioxSTTStream"]

ENV_VAR = "SONIOX_API_KEY"
DEFAULT_BASE_URL = "wss://stt-rt.soniox.com"
WS_PATH = "/transcribe-websocket"
_ENCODINGS: dict[str, Encoding] = {"pcm_s16le": "pcm16", "mulaw": "mulaw", "alaw": "alaw"}
_END_TOKENS = ("<end>", "<fin>")


class _Options(TypedDict, total=False):
    """Every SonioxSTT option except the audio format (for :meth:`SonioxSTT.for_twilio`)."""

    model: str
    language_hints: Sequence[str] | None
    language_hints_strict: bool
    enable_speaker_diarization: bool
    enable_language_identification: bool
    max_endpoint_delay_ms: int
    client_reference_id: str | None
    base_url: str
    keepalive_interval_s: float
    open_timeout_s: float
    close_timeout_s: float


class SonioxSTT(BaseSTT):
    """Soniox streaming recognition with endpoint detection; ``provider_id="soniox"``."""

    provider_id = "soniox"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str = "stt-rt-v4",
        language_hints: Sequence[str] | None = None,
        language_hints_strict: bool = False,
        audio_format: str | None = None,
        sample_rate: int | None = None,
        enable_speaker_diarization: bool = False,
        enable_language_identification: bool = True,
        max_endpoint_delay_ms: int = 500,
        client_reference_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        keepalive_interval_s: float = 5.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 3.0,
    ) -> None:
        """``audio_format``/``sample_rate`` left unset: pcm_s16le 16 kHz on its own, and on a call the
        carrier's own format (mu-law 8 kHz on Twilio) so caller audio passes through; set either to pin."""
        self.format_pinned = audio_format is not None or sample_rate is not None
        audio_format = "pcm_s16le" if audio_format is None else audio_format
        sample_rate = 16000 if sample_rate is None else sample_rate
        key = api_key if api_key is not None else os.environ.get(ENV_VAR)
        if not key:
            raise PatterConfigError(
                f"SonioxSTT needs an API key: pass api_key=... or set the {ENV_VAR} environment variable."
            )
        if audio_format not in _ENCODINGS:
            raise PatterConfigError(
                f"SonioxSTT audio_format={audio_format!r} is not supported; use one of {sorted(_ENCODINGS)}."
            )
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise PatterConfigError(f"SonioxSTT sample_rate={sample_rate!r} must be a positive int (Hz).")
        if isinstance(max_endpoint_delay_ms, bool) or not 500 <= max_endpoint_delay_ms <= 3000:
            raise PatterConfigError(
                f"SonioxSTT max_endpoint_delay_ms={max_endpoint_delay_ms!r} must be within 500..3000."
            )
        if language_hints_strict and not language_hints:
            raise PatterConfigError("SonioxSTT language_hints_strict=True needs language_hints.")
        for name, seconds in (
            ("keepalive_interval_s", keepalive_interval_s),
            ("open_timeout_s", open_timeout_s),
            ("close_timeout_s", close_timeout_s),
        ):
            if seconds <= 0:
                raise PatterConfigError(f"SonioxSTT {name}={seconds!r} must be > 0 seconds.")
        self._api_key = key
        self.model = model
        self.language_hints = list(language_hints) if language_hints else None
        self.language_hints_strict = language_hints_strict
        self.audio_format = audio_format
        self.sample_rate = sample_rate
        self.enable_speaker_diarization = enable_speaker_diarization
        self.enable_language_identification = enable_language_identification
        self.max_endpoint_delay_ms = max_endpoint_delay_ms
        self.client_reference_id = client_reference_id
        self.base_url = base_url
        self.url = ws_url(base_url, WS_PATH, owner="SonioxSTT")
        self.keepalive_interval_s = keepalive_interval_s
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.input_format = AudioFormat(_ENCODINGS[audio_format], sample_rate)

    @classmethod
    def for_twilio(cls, api_key: str | None = None, **options: Unpack[_Options]) -> SonioxSTT:
        """Mu-law 8 kHz in, so Twilio media payloads pass straight through without transcoding."""
        return cls(api_key, audio_format="mulaw", sample_rate=8000, **options)

    def _wire_native(self, wire: AudioFormat) -> SonioxSTT | None:
        """Soniox takes raw pcm_s16le, mulaw and alaw at the carrier's rate."""
        name = next((name for name, enc in _ENCODINGS.items() if enc == wire.encoding), None)
        if name is None:
            return None
        return with_attributes(self, audio_format=name, sample_rate=wire.sample_rate, input_format=wire)

    def config(self) -> dict[str, Any]:
        """The first message: always raw mono audio with endpoint detection on."""
        config: dict[str, Any] = {
            "model": self.model,
            "audio_format": self.audio_format,
            "sample_rate": self.sample_rate,
            "num_channels": 1,
            "enable_endpoint_detection": True,
            "max_endpoint_delay_ms": self.max_endpoint_delay_ms,
            "enable_speaker_diarization": self.enable_speaker_diarization,
            "enable_language_identification": self.enable_language_identification,
        }
        if self.language_hints:
            config["language_hints"] = self.language_hints
            config["language_hints_strict"] = self.language_hints_strict
        if self.client_reference_id:
            config["client_reference_id"] = self.client_reference_id
        return config

    def __repr__(self) -> str:
        return (
            f"SonioxSTT(model={self.model!r}, audio_format={self.audio_format!r}, "
            f"sample_rate={self.sample_rate}, base_url={self.base_url!r})"
        )

    async def open(self) -> SonioxSTTStream:
        ws = await connect_ws(
            self.url,
            {"Authorization": f"Bearer {self._api_key}"},
            vendor="Soniox",
            env_var=ENV_VAR,
            secrets=(self._api_key,),
            open_timeout_s=self.open_timeout_s,
            close_timeout_s=self.close_timeout_s,
        )
        stream = SonioxSTTStream(
            ws, self.input_format, keepalive_s=self.keepalive_interval_s, close_timeout_s=self.close_timeout_s
        )
        await stream.start(self.config())
        return stream


class SonioxSTTStream(WsSTTStream):
    """One live Soniox session."""

    vendor = "Soniox"

    def __init__(
        self, ws: ClientConnection, input_format: AudioFormat, *, keepalive_s: float, close_timeout_s: float
    ) -> None:
        self._final_text = ""
        self._confidences: list[float] = []
        self._last_interim = ""
        super().__init__(ws, input_format, close_timeout_s=close_timeout_s, keepalive_s=keepalive_s)

    async def start(self, config: dict[str, Any]) -> None:
        """Send the config message (must precede any audio)."""
        await self._send(orjson.dumps(config).decode())

    async def _send_finalize(self) -> None:
        await self._send_json({"type": "finalize"})

    async def _send_close(self) -> None:
        await self._send("")

    def _keepalive_message(self) -> str | None:
        return '{"type":"keepalive"}'

    def _handle(self, raw: str) -> PatterError | None:
        message = parse_json(raw, self.vendor)
        if message is None:
            return None
        if "error_code" in message:
            code = message.get("error_code")
            detail = str(message.get("error_message") or "unknown error")
            return classify_failure(
                self.vendor, code if isinstance(code, int) else None, detail, env_var=ENV_VAR
            )
        pending = ""
        for token in message.get("tokens") or []:
            if not isinstance(token, dict):
                continue
            text = str(token.get("text") or "")
            if not token.get("is_final"):
                pending += text
            elif text in _END_TOKENS:
                self._end_turn()
            else:
                self._final_text += text
                confidence = token.get("confidence")
                if isinstance(confidence, int | float):
                    self._confidences.append(float(confidence))
        interim = (self._final_text + pending).strip()
        if interim and interim != self._last_interim:
            self._emit(Transcript(interim, is_final=False))
        self._last_interim = interim
        return None

    def _end_turn(self) -> None:
        text = self._final_text.strip()
        if text:
            confidence = sum(self._confidences) / len(self._confidences) if self._confidences else 0.0
            self._emit(Transcript(text, is_final=True, end_of_turn=True, confidence=confidence))
        self._final_text = ""
        self._confidences.clear()
        self._last_interim = ""


STT = SonioxSTT
