"""LMNT text-to-speech over HTTP: ``POST {base}/v1/ai/speech/bytes`` (``shared/protocols/tts.md`` §4.1).

What each ``format`` puts on the wire, and what we yield (always ``audio_format``):

* ``raw`` (default): 32-bit float samples at ``sample_rate`` -> converted to PCM16 here, sample by sample,
  as the body streams;
* ``mulaw`` (sent as LMNT's ``ulaw``): G.711 µ-law 8 kHz behind a WAV header -> the header is stripped and
  the µ-law bytes pass through untouched (Twilio-native; :meth:`LMNTTTS.for_twilio`);
* ``wav``: PCM16 in a WAV container (LMNT renders it whole before sending) -> header stripped.

Compressed formats (aac, mp3, webm) are refused: the call layer needs raw samples. ``format`` and
``sample_rate`` left unset follow the carrier (:meth:`LMNTTTS.for_wire`): ``ulaw`` 8 kHz on Twilio (passed
through untouched), ``raw`` 16 kHz on Telnyx L16. LMNT has no A-law, so an A-law carrier gets PCM16
converted by the call.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Any, Final, Self

import numpy as np

from getpatter._provider import with_attributes
from getpatter.audio.format import MULAW_8K, AudioFormat, Encoding
from getpatter.errors import ErrorCode, PatterConfigError, PatterError
from getpatter.tts._http import HttpAudioStreamer, normalize_base_url, resolve_api_key
from getpatter.tts.base import TTS as BaseTTS

LMNT_BASE_URL: Final = "https://api.lmnt.com"
ENV_VAR: Final = "LMNT_API_KEY"
MODELS: Final = ("blizzard", "aurora")
SAMPLE_RATES: Final = (8000, 16000, 24000)
#: Our format name -> LMNT's wire name.
WIRE_FORMATS: Final = {"raw": "raw", "mulaw": "ulaw", "ulaw": "ulaw", "wav": "wav"}
MAX_CHARS: Final = 5000
_OWNER: Final = "LMNTTTS"
_VENDOR: Final = "LMNT TTS"


class WavHeaderStripper:
    """Drops a leading RIFF/WAVE header (any chunks up to ``data``) from a byte stream; other data passes.

    Streaming WAVs carry a placeholder data size, so everything after the ``data`` chunk header is audio.
    """

    def __init__(self) -> None:
        self._head = b""
        self._done = False

    def feed(self, data: bytes) -> bytes:
        if self._done:
            return data
        self._head += data
        if len(self._head) < 12:
            return b""
        if self._head[:4] != b"RIFF" or self._head[8:12] != b"WAVE":
            self._done = True
            out, self._head = self._head, b""
            return out
        pos = 12
        while len(self._head) >= pos + 8:
            chunk_id = self._head[pos : pos + 4]
            (size,) = struct.unpack("<I", self._head[pos + 4 : pos + 8])
            if chunk_id == b"data":
                self._done = True
                out, self._head = self._head[pos + 8 :], b""
                return out
            pos += 8 + size + (size & 1)
        return b""


class Float32ToPcm16:
    """Converts a stream of little-endian float32 samples to PCM16, carrying partial samples across chunks."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        data = self._carry + data if self._carry else data
        usable = len(data) - len(data) % 4
        self._carry = data[usable:]
        if not usable:
            return b""
        samples = np.frombuffer(data[:usable], dtype="<f4")
        return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype("<i2").tobytes()


class LMNTTTS(BaseTTS):
    """Streams LMNT speech in ``output_format``; ``provider_id`` ``lmnt``, billed per character.

    ``language=None`` sends ``auto`` (blizzard detects the language) or ``en`` for aurora. ``temperature``
    (>= 0) and ``top_p`` (0-1] trade expressiveness for stability.
    """

    provider_id = "lmnt"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "blizzard",
        voice: str = "leah",
        language: str | None = None,
        format: str | None = None,
        sample_rate: int | None = None,
        temperature: float = 1.0,
        top_p: float = 0.8,
        *,
        base_url: str = LMNT_BASE_URL,
        timeout: float = 30.0,
    ) -> None:
        key = resolve_api_key(api_key, owner=_OWNER, env_var=ENV_VAR)
        # Left unset: raw (PCM16) 16 kHz on its own, the carrier's format on a call (for_wire).
        self.format_pinned = format is not None or sample_rate is not None
        format = "raw" if format is None else format
        sample_rate = 16000 if sample_rate is None else sample_rate
        if model not in MODELS:
            raise PatterConfigError(f"{_OWNER}: model must be one of {MODELS} (got {model!r}).")
        if format not in WIRE_FORMATS:
            raise PatterConfigError(
                f"{_OWNER}: format must be raw, mulaw or wav (got {format!r}); "
                "compressed formats cannot be played without decoding."
            )
        if sample_rate not in SAMPLE_RATES:
            raise PatterConfigError(
                f"{_OWNER}: sample_rate must be one of {SAMPLE_RATES} (got {sample_rate})."
            )
        if WIRE_FORMATS[format] == "ulaw" and sample_rate != 8000:
            raise PatterConfigError(f"{_OWNER}: format='mulaw' needs sample_rate=8000.")
        if not voice.strip():
            raise PatterConfigError(f"{_OWNER}: voice must be a voice id such as 'leah'.")
        if isinstance(temperature, bool) or temperature < 0:
            raise PatterConfigError(f"{_OWNER}: temperature must be >= 0 (got {temperature}).")
        if isinstance(top_p, bool) or not 0 < top_p <= 1:
            raise PatterConfigError(f"{_OWNER}: top_p must be in (0, 1] (got {top_p}).")
        self.model = model
        self.voice = voice.strip()
        self.language = language or ("en" if model == "aurora" else "auto")
        self.format = "mulaw" if format == "ulaw" else format
        self.sample_rate = sample_rate
        self.temperature = temperature
        self.top_p = top_p
        encoding: Encoding = "mulaw" if self.format == "mulaw" else "pcm16"
        self.audio_format = AudioFormat(encoding, sample_rate)
        self.output_format = WIRE_FORMATS[self.format]
        self._url = normalize_base_url(base_url, owner=_OWNER) + "/v1/ai/speech/bytes"
        self._api_key = key
        self._http = HttpAudioStreamer(vendor=_VENDOR, secret=key, timeout=timeout)

    def _wire_native(self, wire: AudioFormat) -> Self | None:
        """LMNT produces µ-law 8 kHz (``ulaw``) and PCM at its listed rates (``raw``, float32 made PCM16
        here, no resampling); no A-law (None: the call converts)."""
        if wire == MULAW_8K:
            fmt = "mulaw"
        elif wire.encoding == "pcm16" and wire.sample_rate in SAMPLE_RATES:
            fmt = "raw"
        else:
            return None
        return with_attributes(
            self, format=fmt, sample_rate=wire.sample_rate, audio_format=wire, output_format=WIRE_FORMATS[fmt]
        )

    @classmethod
    def for_twilio(cls, **kwargs: Any) -> Self:
        """µ-law 8 kHz: Twilio's wire format, no transcoding."""
        return cls._with_format("mulaw", 8000, kwargs)

    @classmethod
    def for_telnyx(cls, **kwargs: Any) -> Self:
        """PCM16 16 kHz (from ``raw``): Telnyx's L16/16000 stream format."""
        return cls._with_format("raw", 16000, kwargs)

    @classmethod
    def _with_format(cls, fmt: str, rate: int, kwargs: dict[str, Any]) -> Self:
        if "format" in kwargs or "sample_rate" in kwargs:
            raise PatterConfigError(f"{_OWNER}: for_twilio()/for_telnyx() choose format and sample_rate.")
        return cls(format=fmt, sample_rate=rate, **kwargs)

    def __repr__(self) -> str:
        return (
            f"LMNTTTS(model={self.model!r}, voice={self.voice!r}, format={self.format!r}, "
            f"sample_rate={self.sample_rate})"
        )

    def body(self, text: str) -> dict[str, Any]:
        return {
            "text": text,
            "voice": self.voice,
            "model": self.model,
            "language": self.language,
            "format": WIRE_FORMATS[self.format],
            "sample_rate": self.sample_rate,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield audio in ``output_format`` as LMNT streams it; blank text sends no request."""
        text = text.strip()
        if not text:
            return
        if len(text) > MAX_CHARS:
            raise PatterError(
                f"{_OWNER}: text longer than {MAX_CHARS} characters.", code=ErrorCode.INPUT_VALIDATION
            )
        convert = Float32ToPcm16() if self.format == "raw" else None
        strip = WavHeaderStripper()
        width = self.audio_format.bytes_per_sample
        carry = b""
        async for piece in self._http.stream(
            self._url,
            headers={"X-API-Key": self._api_key, "Accept": "application/octet-stream"},
            json_body=self.body(text),
            sample_width=4 if convert is not None else 1,
        ):
            if convert is not None:
                out = convert.feed(piece)
            else:
                data = carry + strip.feed(piece)
                usable = len(data) - len(data) % width
                out, carry = data[:usable], data[usable:]
            if out:
                yield out

    async def close(self) -> None:
        """Close the pooled connection(s); the instance reconnects on demand."""
        await self._http.aclose()


TTS = LMNTTTS

__all__ = ["LMNTTTS", "MODELS", "TTS", "WIRE_FORMATS", "Float32ToPcm16", "WavHeaderStripper"]
