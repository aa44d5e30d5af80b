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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any, Literal, TypedDict, Unpack, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from getpatter._channel import EventChannel
from getpatter._channel import StreamEnd as _End
from getpatter._provider import with_attributes
from getpatter._wslog import VENDOR_WS_LOGGER
from getpatter.audio.format import MULAW_8K, AudioFormat, Encoding
from getpatter.errors import (
    AuthenticationError,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from getpatter.stt.base import STT as BaseSTT
from getpatter.stt.base import SpeechStarted, STTEvent, STTStream, Transcript

__all__ = ["STT", "DeepgramSTT", "DeepgramSTTStream"]

log = logging.getLogger(__name__)

ENV_VAR = "DEEPGRAM_API_KEY"
DEFAULT_BASE_URL = "wss://api.deepgram.com"
LISTEN_PATH = "/v1/listen"

#: Deepgram's raw encodings that map onto an :class:`AudioFormat` we can describe.
_ENCODINGS: dict[str, Encoding] = {"linear16": "pcm16", "mulaw": "mulaw", "alaw": "alaw"}
_MIN_FRAME_MS = 20.0
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


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
    parts = urlsplit(base_url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise PatterConfigError(
            f"DeepgramSTT base_url={base_url!r} is not a URL; pass e.g. base_url='wss://api.deepgram.com' "
            "(http/https/ws/wss accepted)."
        )
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + LISTEN_PATH, "", ""))


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
        url = f"{self.url}?{urlencode(self.query_params())}"
        try:
            ws = await connect(
                url,
                logger=VENDOR_WS_LOGGER,
                additional_headers={"Authorization": f"Token {self._api_key}"},
                open_timeout=self.open_timeout_s,
                close_timeout=self.close_timeout_s,
                max_size=4 * 1024 * 1024,
                compression=None,
            )
        except InvalidStatus as exc:
            raise _refusal(exc) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise PatterConnectionError(f"Deepgram: could not connect to {self.url}: {exc}") from exc
        return DeepgramSTTStream(ws, self.input_format, self.keepalive_interval_s, self.close_timeout_s)


def _refusal(exc: InvalidStatus) -> Exception:
    """Map an HTTP answer to the upgrade onto our error types (the body and ``dg-error`` header explain)."""
    response = exc.response
    status = response.status_code
    detail = response.headers.get("dg-error") or response.body.decode("utf-8", "replace")[:200]
    request_id = response.headers.get("dg-request-id")
    where = f" (request id {request_id})" if request_id else ""
    message = f"Deepgram refused the connection with HTTP {status}{where}: {detail}"
    if status in (401, 403):
        return AuthenticationError(message + f". Check the api_key / {ENV_VAR}.")
    if status == 429:
        retry_after: float | None = None
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(response.headers.get("retry-after", ""))
        return RateLimitError(message, retry_after=retry_after)
    return PatterConnectionError(message)


class DeepgramSTTStream(STTStream):
    """One live Deepgram session: a reader task turns server messages into events on a queue."""

    def __init__(
        self, ws: ClientConnection, input_format: AudioFormat, keepalive_s: float, close_timeout_s: float
    ) -> None:
        self.audio_seconds = 0.0
        self._ws = ws
        self._format = input_format
        self._min_frame = input_format.bytes_for_ms(_MIN_FRAME_MS)
        self._buffer = bytearray()
        self._keepalive_s = keepalive_s
        self._close_timeout_s = close_timeout_s
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._loop.time()
        self._events: EventChannel[STTEvent] = EventChannel()
        self._failure: PatterError | None = None
        self._closing = False
        self._close_done: asyncio.Future[None] | None = None
        # True while recognised speech has not yet been closed by speech_final/UtteranceEnd.
        self._turn_open = False
        self._reader = asyncio.create_task(self._read_loop(), name="deepgram-stt-reader")
        self._keepalive = asyncio.create_task(self._keepalive_loop(), name="deepgram-stt-keepalive")

    # -- outbound ------------------------------------------------------------------------------------

    async def send(self, audio: bytes) -> None:
        """Buffer ``audio``; ship whole samples once >= 20 ms is pending. A no-op after :meth:`close`."""
        if self._closing:
            return
        self._raise_if_failed()
        self.audio_seconds += self._format.duration_ms(len(audio)) / 1000.0
        self._buffer += audio
        if len(self._buffer) >= self._min_frame:
            await self._flush_audio()

    async def finalize(self) -> None:
        if self._closing:
            return
        self._raise_if_failed()
        await self._flush_audio()
        await self._send_control("Finalize")

    async def _flush_audio(self) -> None:
        usable = len(self._buffer) - len(self._buffer) % self._format.bytes_per_sample
        if usable <= 0:
            return
        chunk = bytes(self._buffer[:usable])
        del self._buffer[:usable]
        await self._send(chunk)

    async def _send_control(self, kind: str) -> None:
        await self._send(orjson.dumps({"type": kind}).decode())

    async def _send(self, message: bytes | str) -> None:
        try:
            await self._ws.send(message)
        except ConnectionClosed as exc:
            raise self._failure or PatterConnectionError(f"Deepgram connection lost: {exc}") from exc
        self._last_sent = self._loop.time()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _keepalive_loop(self) -> None:
        """Deepgram closes a socket idle for 10 s (NET-0001): send KeepAlive when no audio flowed."""
        with contextlib.suppress(PatterConnectionError):
            while not self._closing:
                due = self._last_sent + self._keepalive_s - self._loop.time()
                if due > 0:
                    await asyncio.sleep(due)
                    continue
                await self._send_control("KeepAlive")

    # -- inbound -------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        end = _End(None)
        try:
            async for raw in self._ws:
                if isinstance(raw, bytes):
                    continue
                failure = self._handle(raw)
                if failure is not None:
                    end = _End(failure)
                    break
        except ConnectionClosed as exc:
            if not self._closing:
                end = _End(PatterConnectionError(f"Deepgram closed the stream unexpectedly: {exc}"))
        else:
            if end.error is None and not self._closing:
                code, reason = self._ws.close_code, self._ws.close_reason
                end = _End(
                    PatterConnectionError(f"Deepgram closed the stream unexpectedly ({code} {reason!r}).")
                )
        if end.error is not None:
            self._failure = end.error
            await self._ws.close()
        self._events.put_nowait(end)

    def _handle(self, raw: str) -> PatterConnectionError | None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("Deepgram sent a text frame that is not JSON; ignored")
            return None
        if not isinstance(message, dict):
            return None
        kind = message.get("type")
        if kind == "Results":
            self._on_results(message)
        elif kind == "UtteranceEnd":
            if self._turn_open:
                self._turn_open = False
                self._events.put_nowait(Transcript("", is_final=True, end_of_turn=True))
        elif kind == "SpeechStarted":
            self._events.put_nowait(SpeechStarted())
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
            self._events.put_nowait(Transcript(text, is_final, speech_final, confidence))
        elif speech_final and self._turn_open:
            self._turn_open = False
            self._events.put_nowait(Transcript("", is_final=True, end_of_turn=True))

    def __aiter__(self) -> DeepgramSTTStream:
        return self

    async def __anext__(self) -> STTEvent:
        """Next event; raises the stream's PatterConnectionError once if it died, then stops."""
        return await self._events.next()

    # -- shutdown ------------------------------------------------------------------------------------

    async def close(self) -> None:
        """CloseStream, let the reader drain for up to ``close_timeout_s``, then drop the socket."""
        if self._close_done is not None:
            await asyncio.shield(self._close_done)
            return
        self._close_done = self._loop.create_future()
        try:
            if self._failure is None and not self._reader.done():
                with contextlib.suppress(PatterConnectionError):
                    await self._flush_audio()
                    self._closing = True
                    await self._send_control("CloseStream")
            self._closing = True
            self._buffer.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), self._close_timeout_s)
            self._keepalive.cancel()
            await self._ws.close()
            await asyncio.gather(self._reader, self._keepalive, return_exceptions=True)
        finally:
            self._close_done.set_result(None)


STT = DeepgramSTT
