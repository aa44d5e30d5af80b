"""Cartesia STT (``ink-whisper``) over the manual-finalize WebSocket ``/stt/websocket`` (stt.md s. 3).

This endpoint has no server-side turn detection, so ``needs_vad_end_of_turn`` is True: the pipeline's VAD
calls ``finalize()``, we send the text command ``finalize``, and when the server answers ``flush_done``
the stream yields exactly one ``Transcript(turn_text, is_final=True, end_of_turn=True)``. Cartesia's
``transcript`` messages are deltas since the last ``is_final``; fixed pieces are joined into the turn's
text, and every message also yields an interim Transcript of the whole turn so far. ``close()`` sends
``close`` and waits for ``done``; text still held then is flushed as a last final. Auth is ``X-API-Key``
plus a ``Cartesia-Version`` header. Error mapping and close semantics: :mod:`getpatter.stt._ws`.
"""

from __future__ import annotations

import os
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection

from getpatter._provider import with_attributes
from getpatter.audio.format import AudioFormat, Encoding
from getpatter.errors import PatterConfigError, PatterError
from getpatter.stt._ws import WsSTTStream, classify_failure, connect_ws, parse_json, ws_url
from getpatter.stt.base import STT as BaseSTT
from getpatter.stt.base import Transcript

__all__ = ["STT", "CartesiaSTT", "CartesiaSTTStream"]

ENV_VAR = "CARTESIA_API_KEY"
DEFAULT_BASE_URL = "https://api.cartesia.ai"
WS_PATH = "/stt/websocket"
CARTESIA_VERSION = "2025-04-16"
SAMPLE_RATES = (8000, 16000, 24000, 44100, 48000)
_ENCODINGS: dict[str, Encoding] = {"pcm_s16le": "pcm16", "pcm_mulaw": "mulaw", "pcm_alaw": "alaw"}


class _Options(TypedDict, total=False):
    language: str
    model: str
    min_volume: float | None
    max_silence_duration_secs: float | None
    base_url: str
    version: str
    open_timeout_s: float
    close_timeout_s: float


class CartesiaSTT(BaseSTT):
    """Cartesia streaming recognition with VAD-driven finalization; ``provider_id="cartesia_stt"``."""

    provider_id = "cartesia_stt"
    needs_vad_end_of_turn = True

    def __init__(
        self,
        api_key: str | None = None,
        *,
        language: str = "en",
        model: str = "ink-whisper",
        encoding: str | None = None,
        sample_rate: int | None = None,
        min_volume: float | None = None,
        max_silence_duration_secs: float | None = None,
        base_url: str = DEFAULT_BASE_URL,
        version: str = CARTESIA_VERSION,
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
                f"CartesiaSTT needs an API key: pass api_key=... or set the {ENV_VAR} environment variable."
            )
        if encoding not in _ENCODINGS:
            raise PatterConfigError(
                f"CartesiaSTT encoding={encoding!r} is not supported; use one of {sorted(_ENCODINGS)}."
            )
        if sample_rate not in SAMPLE_RATES:
            raise PatterConfigError(f"CartesiaSTT sample_rate={sample_rate!r} must be one of {SAMPLE_RATES}.")
        if min_volume is not None and not 0.0 <= min_volume <= 1.0:
            raise PatterConfigError(f"CartesiaSTT min_volume={min_volume!r} must be between 0 and 1.")
        if max_silence_duration_secs is not None and max_silence_duration_secs <= 0:
            raise PatterConfigError("CartesiaSTT max_silence_duration_secs must be > 0 seconds.")
        if open_timeout_s <= 0 or close_timeout_s <= 0:
            raise PatterConfigError("CartesiaSTT open_timeout_s and close_timeout_s must be > 0 seconds.")
        self._api_key = key
        self.language = language
        self.model = model
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.min_volume = min_volume
        self.max_silence_duration_secs = max_silence_duration_secs
        self.base_url = base_url
        self.url = ws_url(base_url, WS_PATH, owner="CartesiaSTT")
        self.api_version = version
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.input_format = AudioFormat(_ENCODINGS[encoding], sample_rate)

    @classmethod
    def for_twilio(cls, api_key: str | None = None, **options: Unpack[_Options]) -> CartesiaSTT:
        """Mu-law 8 kHz in, so Twilio media payloads pass straight through without transcoding."""
        return cls(api_key, encoding="pcm_mulaw", sample_rate=8000, **options)

    def _wire_native(self, wire: AudioFormat) -> CartesiaSTT | None:
        """Cartesia takes pcm_s16le, pcm_mulaw and pcm_alaw at its listed rates."""
        encoding = next((name for name, enc in _ENCODINGS.items() if enc == wire.encoding), None)
        if encoding is None or wire.sample_rate not in SAMPLE_RATES:
            return None
        return with_attributes(self, encoding=encoding, sample_rate=wire.sample_rate, input_format=wire)

    def query_params(self) -> list[tuple[str, str]]:
        params = [
            ("model", self.model),
            ("language", self.language),
            ("encoding", self.encoding),
            ("sample_rate", str(self.sample_rate)),
        ]
        if self.min_volume is not None:
            params.append(("min_volume", f"{self.min_volume:g}"))
        if self.max_silence_duration_secs is not None:
            params.append(("max_silence_duration_secs", f"{self.max_silence_duration_secs:g}"))
        return params

    def __repr__(self) -> str:
        return (
            f"CartesiaSTT(model={self.model!r}, language={self.language!r}, encoding={self.encoding!r}, "
            f"sample_rate={self.sample_rate}, base_url={self.base_url!r})"
        )

    async def open(self) -> CartesiaSTTStream:
        ws = await connect_ws(
            f"{self.url}?{urlencode(self.query_params())}",
            {"X-API-Key": self._api_key, "Cartesia-Version": self.api_version},
            vendor="Cartesia STT",
            env_var=ENV_VAR,
            secrets=(self._api_key,),
            open_timeout_s=self.open_timeout_s,
            close_timeout_s=self.close_timeout_s,
        )
        return CartesiaSTTStream(ws, self.input_format, close_timeout_s=self.close_timeout_s)


class CartesiaSTTStream(WsSTTStream):
    """One live Cartesia session; the turn's fixed text is held until ``flush_done``."""

    vendor = "Cartesia STT"

    def __init__(self, ws: ClientConnection, input_format: AudioFormat, *, close_timeout_s: float) -> None:
        self._fixed: list[str] = []
        super().__init__(ws, input_format, close_timeout_s=close_timeout_s)

    async def _send_finalize(self) -> None:
        await self._send("finalize")

    async def _send_close(self) -> None:
        await self._send("close")

    def _handle(self, raw: str) -> PatterError | None:
        message = parse_json(raw, self.vendor)
        if message is None:
            return None
        kind = message.get("type")
        if kind == "transcript":
            self._on_transcript(message)
        elif kind == "flush_done":
            self._end_turn(always=True)
        elif kind == "done":
            self._end_turn(always=False)
        elif kind == "error":
            status = message.get("status_code")
            detail = str(message.get("message") or message.get("title") or "unknown error")
            return classify_failure(
                self.vendor, status if isinstance(status, int) else None, detail, env_var=ENV_VAR
            )
        return None

    def _on_transcript(self, message: dict[str, Any]) -> None:
        text = str(message.get("text") or "").strip()
        is_final = bool(message.get("is_final"))
        if is_final and text:
            self._fixed.append(text)
        so_far = " ".join(self._fixed if is_final or not text else [*self._fixed, text])
        if so_far:
            self._emit(Transcript(so_far, is_final=False))

    def _end_turn(self, *, always: bool) -> None:
        """``flush_done`` always answers a finalize (even with ""); ``done`` flushes held text only."""
        text = " ".join(self._fixed)
        if always or text:
            self._emit(Transcript(text, is_final=True, end_of_turn=True))
        self._fixed.clear()


STT = CartesiaSTT
