"""Deepgram live speech-to-text over its streaming WebSocket (``/v1/listen``).

Wire facts live in ``shared/protocols/stt.md`` section 1. The contract this module keeps:

* Audio goes out as binary frames exactly in ``input_format`` (no transcoding here), coalesced to at least
  20 ms so tiny carrier frames do not become tiny WebSocket frames (the call layer sends 40 ms, see
  ``call/stt_link.py``). No permessage-deflate: deflating audio costs CPU per frame and saves little.
* ``input_format`` left at its default follows the carrier (:meth:`DeepgramSTT.for_wire`): mu-law 8 kHz
  on Twilio, linear16 16 kHz on Telnyx L16; an explicit ``encoding``/``sample_rate`` is kept.
* Events come back as :class:`Transcript` / :class:`SpeechStarted`. ``end_of_turn`` is set by the
  vendor's endpointer (``speech_final``) or, as a fallback, by ``UtteranceEnd`` -- never both for the same
  utterance.
* Any vendor ``Error`` message or a close we did not ask for ends the iteration with
  :class:`PatterConnectionError`; the caller decides whether to reconnect.

Framing, keepalive, close and handshake errors are the shared WebSocket STT base's
(:mod:`getpatter.stt._ws`); this module holds Deepgram's options, query and messages.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Literal, TypedDict, Unpack, cast
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection
from websockets.http11 import Response

from getpatter._provider import with_attributes
from getpatter.audio.format import MULAW_8K, AudioFormat, Encoding
from getpatter.errors import PatterConfigError, PatterConnectionError
from getpatter.stt._ws import WsSTTStream, connect_ws, parse_json, ws_url
from getpatter.stt.base import STT as BaseSTT
from getpatter.stt.base import SpeechStarted, Transcript

__all__ = ["STT", "DeepgramSTT", "DeepgramSTTStream"]

log = logging.getLogger(__name__)

ENV_VAR = "DEEPGRAM_API_KEY"
DEFAULT_BASE_URL = "wss://api.deepgram.com"
LISTEN_PATH = "/v1/listen"

#: Deepgram's raw encodings that map onto an :class:`AudioFormat` we can describe.
_ENCODINGS: dict[str, Encoding] = {"linear16": "pcm16", "mulaw": "mulaw", "alaw": "alaw"}
_MIN_FRAME_MS = 20.0


class _Options(TypedDict, total=False):
    """Every DeepgramSTT option except the audio format (for the carrier-native constructors)."""

    language: str | None
    model: str
    endpointing_ms: int | Literal[False] | None
    utterance_end_ms: int | None
    smart_format: bool
    interim_results: bool
    vad_events: bool
    base_url: str
    keepalive_interval_s: float
    open_timeout_s: float
    close_timeout_s: float


def _ws_url(base_url: str) -> str:
    """Scheme-swap ``base_url`` (http->ws, https->wss) and append ``/v1/listen`` to any path prefix."""
    return ws_url(base_url, LISTEN_PATH, owner="DeepgramSTT", example=DEFAULT_BASE_URL)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _bool(value: bool) -> str:
    return "true" if value else "false"


class DeepgramSTT(BaseSTT):
    """Deepgram streaming recognition; configuration only, each :meth:`open` is one call's session."""

    provider_id = "deepgram"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        language: str | None = "en",
        model: str = "nova-3",
        encoding: str | None = None,
        sample_rate: int | None = None,
        endpointing_ms: int | Literal[False] | None = 150,
        utterance_end_ms: int | None = 1000,
        smart_format: bool = False,
        interim_results: bool = True,
        vad_events: bool = True,
        base_url: str = DEFAULT_BASE_URL,
        keepalive_interval_s: float = 4.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
    ) -> None:
        """``endpointing_ms=False`` disables Deepgram's endpointer (turns then end on ``UtteranceEnd`` or
        :meth:`DeepgramSTTStream.finalize`); ``None`` omits it and leaves the vendor default.

        ``encoding``/``sample_rate`` left unset: linear16 16 kHz on its own, and on a call the carrier's
        own format (mu-law 8 kHz on Twilio) so caller audio passes through; set either to pin the format."""
        self.format_pinned = encoding is not None or sample_rate is not None
        encoding = "linear16" if encoding is None else encoding
        sample_rate = 16000 if sample_rate is None else sample_rate
        key = api_key if api_key is not None else os.environ.get(ENV_VAR)
        if not key:
            raise PatterConfigError(
                f"DeepgramSTT needs an API key: pass api_key=... or set the {ENV_VAR} environment variable."
            )
        if encoding not in _ENCODINGS:
            raise PatterConfigError(
                f"DeepgramSTT encoding={encoding!r} is not supported; use one of {sorted(_ENCODINGS)}."
            )
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
            raise PatterConfigError(f"DeepgramSTT sample_rate={sample_rate!r} must be a positive int (Hz).")
        if endpointing_ms is not None and endpointing_ms is not False and not _is_count(endpointing_ms):
            raise PatterConfigError(
                f"DeepgramSTT endpointing_ms={endpointing_ms!r} must be an int >= 0, False or None."
            )
        if utterance_end_ms is not None:
            if isinstance(utterance_end_ms, bool) or not isinstance(utterance_end_ms, int):
                raise PatterConfigError(f"DeepgramSTT utterance_end_ms={utterance_end_ms!r} must be an int.")
            if utterance_end_ms <= 0:
                raise PatterConfigError("DeepgramSTT utterance_end_ms must be > 0 (1000 or more advised).")
            if not interim_results:
                raise PatterConfigError(
                    "DeepgramSTT utterance_end_ms needs interim_results=True; "
                    "set interim_results=True or utterance_end_ms=None."
                )
        for name, seconds in (
            ("keepalive_interval_s", keepalive_interval_s),
            ("open_timeout_s", open_timeout_s),
            ("close_timeout_s", close_timeout_s),
        ):
            if seconds <= 0:
                raise PatterConfigError(f"DeepgramSTT {name}={seconds!r} must be > 0 seconds.")
        self._api_key = key
        self.model = model
        self.language = language
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.endpointing_ms = endpointing_ms
        self.utterance_end_ms = utterance_end_ms
        self.smart_format = smart_format
        self.interim_results = interim_results
        self.vad_events = vad_events
        self.base_url = base_url
        self.url = _ws_url(base_url)
        self.keepalive_interval_s = keepalive_interval_s
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.input_format = AudioFormat(_ENCODINGS[encoding], sample_rate)

    @classmethod
    def for_twilio(cls, api_key: str | None = None, **options: Unpack[_Options]) -> DeepgramSTT:
        """Mu-law 8 kHz in, so Twilio media payloads pass straight through without transcoding."""
        stt = cls(api_key, encoding="mulaw", sample_rate=8000, **options)
        stt.input_format = MULAW_8K
        return stt

    def _wire_native(self, wire: AudioFormat) -> DeepgramSTT | None:
        """Deepgram takes raw linear16, mu-law and A-law at the carrier's rate."""
        encoding = next((name for name, enc in _ENCODINGS.items() if enc == wire.encoding), None)
        if encoding is None:
            return None
        return with_attributes(self, encoding=encoding, sample_rate=wire.sample_rate, input_format=wire)

    def query_params(self) -> list[tuple[str, str]]:
        """The handshake query: only what is set, booleans lowercase, always mono raw audio."""
        params: list[tuple[str, str]] = [("model", self.model)]
        if self.language:
            params.append(("language", self.language))
        params += [
            ("encoding", self.encoding),
            ("sample_rate", str(self.sample_rate)),
            ("channels", "1"),
            ("interim_results", _bool(self.interim_results)),
        ]
        if self.endpointing_ms is False:
            params.append(("endpointing", "false"))
        elif self.endpointing_ms is not None:
            params.append(("endpointing", str(self.endpointing_ms)))
        if self.utterance_end_ms is not None:
            params.append(("utterance_end_ms", str(self.utterance_end_ms)))
        params += [("vad_events", _bool(self.vad_events)), ("smart_format", _bool(self.smart_format))]
        return params

    def __repr__(self) -> str:
        return (
            f"DeepgramSTT(model={self.model!r}, language={self.language!r}, encoding={self.encoding!r}, "
            f"sample_rate={self.sample_rate}, base_url={self.base_url!r})"
        )

    async def open(self) -> DeepgramSTTStream:
        ws = await connect_ws(
            f"{self.url}?{urlencode(self.query_params())}",
            {"Authorization": f"Token {self._api_key}"},
            vendor="Deepgram",
            env_var=ENV_VAR,
            secrets=(self._api_key,),
            open_timeout_s=self.open_timeout_s,
            close_timeout_s=self.close_timeout_s,
            refusal_detail=_refusal_detail,
        )
        return DeepgramSTTStream(ws, self.input_format, self.keepalive_interval_s, self.close_timeout_s)


def _refusal_detail(response: Response) -> str:
    """Deepgram explains a refusal in its ``dg-error`` header (else the body) and names the request."""
    detail = response.headers.get("dg-error") or bytes(response.body or b"").decode("utf-8", "replace")[:200]
    request_id = response.headers.get("dg-request-id")
    return f"{detail} (request id {request_id})" if request_id else detail


class DeepgramSTTStream(WsSTTStream):
    """One live Deepgram session on the shared WebSocket STT base (framing, keepalive, close, errors)."""

    vendor = "Deepgram"

    def __init__(
        self, ws: ClientConnection, input_format: AudioFormat, keepalive_s: float, close_timeout_s: float
    ) -> None:
        # True while recognised speech has not yet been closed by speech_final/UtteranceEnd.
        self._turn_open = False
        super().__init__(
            ws,
            input_format,
            close_timeout_s=close_timeout_s,
            min_frame_ms=_MIN_FRAME_MS,
            keepalive_s=keepalive_s,
        )

    async def _send_finalize(self) -> None:
        await self._send_json({"type": "Finalize"})

    async def _send_close(self) -> None:
        await self._send_json({"type": "CloseStream"})

    def _keepalive_message(self) -> str:
        """Deepgram closes a socket idle for 10 s (NET-0001): KeepAlive is sent when no audio flowed."""
        return '{"type":"KeepAlive"}'

    def _handle(self, raw: str) -> PatterConnectionError | None:
        message = parse_json(raw, self.vendor)
        if message is None:
            return None
        kind = message.get("type")
        if kind == "Results":
            self._on_results(message)
        elif kind == "UtteranceEnd":
            if self._turn_open:
                self._turn_open = False
                self._emit(Transcript("", is_final=True, end_of_turn=True))
        elif kind == "SpeechStarted":
            self._emit(SpeechStarted())
        elif kind == "Error":
            text = message.get("description") or message.get("message") or "unknown error"
            variant = message.get("variant") or message.get("err_code") or ""
            return PatterConnectionError(f"Deepgram error {variant}: {text}".replace("  ", " "))
        # Metadata and unknown types carry nothing a conversation needs.
        return None

    def _on_results(self, message: dict[str, Any]) -> None:
        """Emit a Transcript; an empty final with ``speech_final`` still ends a turn that had speech.

        Deepgram may put the endpoint on a Results whose own text is empty (the words arrived in an
        earlier ``is_final`` segment). Such a message becomes ``Transcript("", True, True)`` when speech is
        pending, and is dropped when nothing was said (silence-only endpoints are not turns).
        """
        channel = message.get("channel")
        alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
        first = alternatives[0] if isinstance(alternatives, list) and alternatives else {}
        alt = cast(dict[str, Any], first) if isinstance(first, dict) else {}
        text = str(alt.get("transcript") or "").strip()
        confidence = float(alt.get("confidence") or 0.0)
        is_final = bool(message.get("is_final"))
        speech_final = bool(message.get("speech_final")) and is_final
        if text:
            self._turn_open = not speech_final
            self._emit(Transcript(text, is_final, speech_final, confidence))
        elif speech_final and self._turn_open:
            self._turn_open = False
            self._emit(Transcript("", is_final=True, end_of_turn=True))


STT = DeepgramSTT
