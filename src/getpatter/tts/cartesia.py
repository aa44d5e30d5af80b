"""Cartesia text-to-speech over its WebSocket: ``{ws}/tts/websocket`` (``shared/protocols/tts.md`` §2.2).

One socket per provider instance, opened lazily and shared by every ``synthesize`` (a handshake costs more
than a short utterance). Each utterance is its own ``context_id``: the request carries model, voice, raw
output format, language and the whole transcript with ``continue: false``; the server answers with
``chunk`` messages (base64 audio in exactly the requested encoding/rate) and then ``done``. A reader task
routes replies to their context, so concurrent calls can share the socket.

When the consumer stops early (cancel, ``aclose()``) the context is cancelled with
``{"context_id": …, "cancel": true}`` so the vendor stops generating; other contexts are untouched. When the
socket dies every open context fails with :class:`PatterConnectionError` and the next call reconnects.

``encoding``/``sample_rate`` left unset follow the carrier (:meth:`CartesiaTTS.for_wire`): ``pcm_mulaw``
8 kHz on Twilio, ``pcm_s16le`` 16 kHz on Telnyx L16, ``pcm_alaw`` 8 kHz on an A-law carrier. Each such
variant holds its own socket, reader and contexts (a socket fault in one never fails the other's
utterances); :meth:`CartesiaTTS.close` closes the variants' sockets with its own.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final, Self

import httpx
import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from getpatter._provider import wire_variants, with_attributes
from getpatter.audio.format import AudioFormat, Encoding
from getpatter.errors import PatterConfigError, PatterConnectionError, PatterError
from getpatter.tts._http import error_for_status, normalize_base_url, resolve_api_key
from getpatter.tts._ws import SampleCarry, connect_ws, ws_endpoint
from getpatter.tts.base import TTS as BaseTTS

CARTESIA_BASE_URL: Final = "https://api.cartesia.ai"
ENV_VAR: Final = "CARTESIA_API_KEY"
#: Pinned API version: the ``{"mode": "id", "id": …}`` voice shape and raw output formats used here.
CARTESIA_VERSION: Final = "2025-04-16"
DEFAULT_VOICE: Final = "f786b574-daa5-4673-aa0c-cbe3e8534c02"
ENCODINGS: Final[dict[str, Encoding]] = {"pcm_s16le": "pcm16", "pcm_mulaw": "mulaw", "pcm_alaw": "alaw"}
SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)
SPEED_NAMES: Final = ("slowest", "slow", "normal", "fast", "fastest")
_OWNER: Final = "CartesiaTTS"
_VENDOR: Final = "Cartesia TTS"


class _Done:
    """Queue sentinel: the context finished (``error is None``) or failed."""

    __slots__ = ("error",)

    def __init__(self, error: PatterError | None) -> None:
        self.error = error


def _validate(
    encoding: str, sample_rate: int, speed: str | float | None, volume: float | None, emotion: object
) -> None:
    if encoding not in ENCODINGS:
        raise PatterConfigError(
            f"{_OWNER}: encoding must be one of {', '.join(ENCODINGS)} (got {encoding!r})."
        )
    if sample_rate not in SAMPLE_RATES:
        raise PatterConfigError(f"{_OWNER}: sample_rate must be one of {SAMPLE_RATES} (got {sample_rate!r}).")
    if isinstance(speed, str):
        if speed not in SPEED_NAMES:
            raise PatterConfigError(f"{_OWNER}: speed name must be one of {SPEED_NAMES} (got {speed!r}).")
    elif speed is not None and (isinstance(speed, bool) or not 0.6 <= speed <= 2.0):
        raise PatterConfigError(f"{_OWNER}: speed must be a name or a number 0.6-2.0 (got {speed!r}).")
    if volume is not None and (isinstance(volume, bool) or not 0.5 <= volume <= 2.0):
        raise PatterConfigError(f"{_OWNER}: volume must be 0.5-2.0 (got {volume!r}).")
    if emotion is not None and (not isinstance(emotion, str) or not emotion.strip()):
        raise PatterConfigError(
            f"{_OWNER}: emotion must be a non-empty string such as 'calm' (got {emotion!r})."
        )


class CartesiaTTS(BaseTTS):
    """Streams Cartesia speech as raw audio in ``output_format``; ``provider_id`` ``cartesia_tts``.

    ``speed`` is a name from :data:`SPEED_NAMES` (sent as the request's ``speed``) or a number 0.6-2.0;
    numeric ``speed``, ``volume`` (0.5-2.0) and ``emotion`` travel in ``generation_config``. ``encoding`` +
    ``sample_rate`` fix ``output_format`` (unset: the carrier's own format on a call, PCM16 16 kHz on its
    own); :meth:`for_twilio` pins µ-law 8 kHz. ``frame_timeout`` bounds the wait for each reply frame.
    """

    provider_id = "cartesia_tts"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "sonic-2",
        voice: str = DEFAULT_VOICE,
        language: str = "en",
        sample_rate: int | None = None,
        speed: str | float | None = None,
        emotion: str | None = None,
        volume: float | None = None,
        *,
        encoding: str | None = None,
        base_url: str = CARTESIA_BASE_URL,
        ws_base_url: str | None = None,
        version: str = CARTESIA_VERSION,
        open_timeout: float = 5.0,
        frame_timeout: float = 30.0,
    ) -> None:
        key = resolve_api_key(api_key, owner=_OWNER, env_var=ENV_VAR)
        # Left unset: pcm_s16le 16 kHz on its own, the carrier's format on a call (for_wire).
        self.format_pinned = encoding is not None or sample_rate is not None
        encoding = "pcm_s16le" if encoding is None else encoding
        sample_rate = 16000 if sample_rate is None else sample_rate
        _validate(encoding, sample_rate, speed, volume, emotion)
        if not model or not voice.strip() or not language:
            raise PatterConfigError(f"{_OWNER}: model, voice and language must be non-empty.")
        for name, seconds in (("open_timeout", open_timeout), ("frame_timeout", frame_timeout)):
            if seconds <= 0:
                raise PatterConfigError(f"{_OWNER}: {name} must be > 0 seconds (got {seconds}).")
        self.model = model
        self.voice = voice.strip()
        self.language = language
        self.sample_rate = sample_rate
        self.encoding = encoding
        self.speed = speed
        self.emotion = emotion
        self.volume = volume
        self.api_version = version
        self.open_timeout = open_timeout
        self.frame_timeout = frame_timeout
        self.audio_format = AudioFormat(ENCODINGS[encoding], sample_rate)
        self.output_format = encoding
        normalize_base_url(base_url, owner=_OWNER)
        self._url = ws_endpoint(base_url, ws_base_url, "/tts/websocket", owner=_OWNER)
        self._api_key = key
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._contexts: dict[str, asyncio.Queue[bytes | _Done]] = {}
        self._connect_lock = asyncio.Lock()

    def _wire_native(self, wire: AudioFormat) -> Self | None:
        """Cartesia produces pcm_s16le, pcm_mulaw and pcm_alaw at its listed rates. The copy gets its own
        (not yet opened) socket, reader and contexts: the original's are per instance."""
        encoding = next((name for name, enc in ENCODINGS.items() if enc == wire.encoding), None)
        if encoding is None or wire.sample_rate not in SAMPLE_RATES:
            return None
        return with_attributes(
            self,
            encoding=encoding,
            sample_rate=wire.sample_rate,
            audio_format=wire,
            output_format=encoding,
            _ws=None,
            _reader=None,
            _contexts={},
            _connect_lock=asyncio.Lock(),
        )

    @classmethod
    def for_twilio(cls, **kwargs: Any) -> Self:
        """``pcm_mulaw`` at 8 kHz: Twilio's wire format, no transcoding."""
        return cls._with_format("pcm_mulaw", 8000, kwargs)

    @classmethod
    def for_telnyx(cls, **kwargs: Any) -> Self:
        """``pcm_s16le`` at 16 kHz: Telnyx's L16/16000 stream format."""
        return cls._with_format("pcm_s16le", 16000, kwargs)

    @classmethod
    def _with_format(cls, encoding: str, rate: int, kwargs: dict[str, Any]) -> Self:
        if "encoding" in kwargs or "sample_rate" in kwargs:
            raise PatterConfigError(f"{_OWNER}: for_twilio()/for_telnyx() choose encoding and sample_rate.")
        return cls(encoding=encoding, sample_rate=rate, **kwargs)

    def __repr__(self) -> str:
        return (
            f"CartesiaTTS(model={self.model!r}, voice={self.voice!r}, encoding={self.encoding!r}, "
            f"sample_rate={self.sample_rate})"
        )

    def request(self, text: str, context_id: str) -> dict[str, Any]:
        """The generation request for one whole utterance (``continue: false`` ends the context)."""
        message: dict[str, Any] = {
            "model_id": self.model,
            "transcript": text,
            "voice": {"mode": "id", "id": self.voice},
            "output_format": {"container": "raw", "encoding": self.encoding, "sample_rate": self.sample_rate},
            "language": self.language,
            "context_id": context_id,
            "continue": False,
        }
        config: dict[str, Any] = {}
        if isinstance(self.speed, str):
            message["speed"] = self.speed
        elif self.speed is not None:
            config["speed"] = self.speed
        if self.volume is not None:
            config["volume"] = self.volume
        if self.emotion is not None:
            config["emotion"] = self.emotion
        if config:
            message["generation_config"] = config
        return message

    async def _socket(self) -> ClientConnection:
        async with self._connect_lock:
            if self._ws is None or self._reader is None or self._reader.done():
                self._ws = await connect_ws(
                    self._url,
                    headers={"X-API-Key": self._api_key, "Cartesia-Version": self.api_version},
                    vendor=_VENDOR,
                    secret=self._api_key,
                    open_timeout=self.open_timeout,
                    max_size=8 * 1024 * 1024,
                )
                self._reader = asyncio.create_task(self._read_loop(self._ws), name="cartesia-tts-reader")
            return self._ws

    async def _read_loop(self, ws: ClientConnection) -> None:
        """Route every reply to its context; when the socket ends, fail whatever is still open."""
        reason = "closed by the server"
        try:
            async for raw in ws:
                self._route(raw)
        except ConnectionClosed as exc:
            reason = f"connection lost ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        for queue in self._contexts.values():
            queue.put_nowait(_Done(PatterConnectionError(f"{_VENDOR}: socket {reason} mid-utterance.")))

    def _route(self, raw: str | bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict):
            return
        queue = self._contexts.get(str(message.get("context_id")))
        if queue is None:
            return  # late reply for a context we already finished or cancelled
        kind = message.get("type")
        if kind == "chunk":
            try:
                queue.put_nowait(base64.b64decode(str(message.get("data") or ""), validate=True))
            except (binascii.Error, ValueError):
                queue.put_nowait(_Done(PatterConnectionError(f"{_VENDOR}: chunk is not valid base64.")))
        elif kind == "error":
            status = message.get("status_code")
            code = status if isinstance(status, int) and status >= 400 else 500
            body = orjson.dumps({"message": message.get("message") or message.get("title") or kind})
            queue.put_nowait(_Done(error_for_status(code, httpx.Headers(), body, vendor=_VENDOR, secret="")))
        elif kind == "done" or message.get("done") is True:
            queue.put_nowait(_Done(None))

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield the audio of ``text`` in ``output_format``; blank text sends nothing."""
        if not text.strip():
            return
        ws = await self._socket()
        context_id = f"ctx-{uuid.uuid4().hex}"
        queue: asyncio.Queue[bytes | _Done] = asyncio.Queue()
        self._contexts[context_id] = queue
        carry = SampleCarry(self.audio_format.bytes_per_sample)
        finished = False
        try:
            try:
                await ws.send(orjson.dumps(self.request(text, context_id)).decode())
            except ConnectionClosed:
                raise PatterConnectionError(
                    f"{_VENDOR}: socket closed before the request was sent."
                ) from None
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self.frame_timeout)
                except TimeoutError:
                    raise PatterConnectionError(
                        f"{_VENDOR}: no reply for {self.frame_timeout} s (stall)."
                    ) from None
                if isinstance(item, _Done):
                    finished = True
                    if item.error is not None:
                        raise item.error
                    return
                chunk = carry.feed(item)
                if chunk:
                    yield chunk
        finally:
            del self._contexts[context_id]
            if not finished:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(orjson.dumps({"context_id": context_id, "cancel": True}).decode())

    async def close(self) -> None:
        """Close the shared socket and those of its carrier-native variants; each reconnects on the next
        ``synthesize``."""
        for variant in wire_variants(self):
            await variant.close()
        ws, reader, self._ws, self._reader = self._ws, self._reader, None, None
        if ws is not None:
            await ws.close()
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)


TTS = CartesiaTTS

__all__ = ["CARTESIA_VERSION", "DEFAULT_VOICE", "ENCODINGS", "SAMPLE_RATES", "TTS", "CartesiaTTS"]
