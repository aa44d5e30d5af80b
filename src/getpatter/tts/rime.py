"""Rime text-to-speech over HTTP streaming: ``POST {base}/v1/rime-tts`` (``shared/protocols/tts.md`` §3.1).

The ``Accept`` header, not the body, picks the audio encoding: ``audio/pcm`` (headerless PCM16 at
``samplingRate``) or ``audio/x-mulaw`` (headerless G.711 µ-law, 8 kHz), so both come back ready for the call
layer. Left unset, each call asks for its carrier's own format (:meth:`RimeTTS.for_wire`: ``audio/x-mulaw``
8 kHz on Twilio, ``audio/pcm`` 16 kHz on Telnyx L16), so audio passes through without transcoding; Rime has
no A-law, so an A-law carrier gets PCM16 converted by the call. :meth:`RimeTTS.for_twilio` pins µ-law 8 kHz.

Model families take different options (camelCase on the wire): arcana ``temperature``/``top_p``/
``max_tokens``/``repetition_penalty``; mist ``speedAlpha``, ``reduceLatency``, ``pauseBetweenBrackets``,
``phonemizeBetweenBrackets``. Passing an option to the wrong family is a configuration error rather than
something the vendor silently ignores. Mist models take at most 500 characters a request, so longer text
is sent as several requests, split between words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final, Self

from getpatter._provider import with_attributes
from getpatter.audio.format import MULAW_8K, AudioFormat
from getpatter.errors import PatterConfigError
from getpatter.tts._http import HttpAudioStreamer, normalize_base_url, resolve_api_key
from getpatter.tts.base import TTS as BaseTTS
from getpatter.tts.openai import split_text

RIME_BASE_URL: Final = "https://users.rime.ai"
ENV_VAR: Final = "RIME_API_KEY"
MIST_MAX_CHARS: Final = 500
SAMPLE_RATES: Final = (8000, 16000, 22050, 24000, 44100, 48000)
#: ``encoding`` -> (``Accept`` header, sample encoding).
ACCEPT: Final = {"pcm": "audio/pcm", "mulaw": "audio/x-mulaw"}
_OWNER: Final = "RimeTTS"


def default_speaker(model: str) -> str:
    """Rime's stock speaker for a model family: mist ``cove``, coda ``lyra``, otherwise (arcana) ``astra``."""
    if model.startswith("mist"):
        return "cove"
    if model.startswith("coda"):
        return "lyra"
    return "astra"


class RimeTTS(BaseTTS):
    """Streams Rime speech as PCM16 (default) or µ-law; ``provider_id`` ``rime``, billed per character."""

    provider_id = "rime"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "arcana",
        speaker: str | None = None,
        lang: str = "eng",
        sample_rate: int | None = None,
        *,
        encoding: str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        repetition_penalty: float | None = None,
        speed_alpha: float | None = None,
        reduce_latency: bool | None = None,
        pause_between_brackets: bool | None = None,
        phonemize_between_brackets: bool | None = None,
        base_url: str = RIME_BASE_URL,
        timeout: float = 30.0,
    ) -> None:
        key = resolve_api_key(api_key, owner=_OWNER, env_var=ENV_VAR)
        # Left unset: PCM16 16 kHz on its own, the carrier's format on a call (for_wire).
        self.format_pinned = encoding is not None or sample_rate is not None
        encoding = "pcm" if encoding is None else encoding
        sample_rate = 16000 if sample_rate is None else sample_rate
        if not model:
            raise PatterConfigError(f"{_OWNER}: model must be non-empty, e.g. 'arcana' or 'mistv2'.")
        if encoding not in ACCEPT:
            raise PatterConfigError(f"{_OWNER}: encoding must be 'pcm' or 'mulaw' (got {encoding!r}).")
        if sample_rate not in SAMPLE_RATES:
            raise PatterConfigError(
                f"{_OWNER}: sample_rate must be one of {SAMPLE_RATES} (got {sample_rate})."
            )
        if encoding == "mulaw" and sample_rate != 8000:
            raise PatterConfigError(f"{_OWNER}: encoding='mulaw' needs sample_rate=8000.")
        mist = model.startswith("mist")
        arcana_opts = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "repetition_penalty": repetition_penalty,
        }
        mist_opts = {
            "speedAlpha": speed_alpha,
            "reduceLatency": reduce_latency,
            "pauseBetweenBrackets": pause_between_brackets,
            "phonemizeBetweenBrackets": phonemize_between_brackets,
        }
        wrong = [k for k, v in (arcana_opts if mist else mist_opts).items() if v is not None]
        if wrong:
            raise PatterConfigError(f"{_OWNER}: options {wrong} do not apply to model {model!r}.")
        if speed_alpha is not None and not 0.1 <= speed_alpha <= 5.0:
            raise PatterConfigError(f"{_OWNER}: speed_alpha must be 0.1-5.0 (got {speed_alpha}).")
        if temperature is not None and not 0.0 <= temperature <= 2.0:
            raise PatterConfigError(f"{_OWNER}: temperature must be 0-2 (got {temperature}).")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise PatterConfigError(f"{_OWNER}: top_p must be in (0, 1] (got {top_p}).")
        if max_tokens is not None and max_tokens <= 0:
            raise PatterConfigError(f"{_OWNER}: max_tokens must be > 0 (got {max_tokens}).")
        self.model = model
        self.speaker = speaker.strip() if speaker and speaker.strip() else default_speaker(model)
        self.voice = self.speaker
        self.lang = lang
        self.sample_rate = sample_rate
        self.encoding = encoding
        self.options: dict[str, Any] = {
            k: v for k, v in (mist_opts if mist else arcana_opts).items() if v is not None
        }
        self.audio_format = AudioFormat("mulaw" if encoding == "mulaw" else "pcm16", sample_rate)
        self.output_format = encoding
        self._max_chars = MIST_MAX_CHARS if mist else None
        self._url = normalize_base_url(base_url, owner=_OWNER) + "/v1/rime-tts"
        self._api_key = key
        self._http = HttpAudioStreamer(vendor="Rime TTS", secret=key, timeout=timeout)

    def _wire_native(self, wire: AudioFormat) -> Self | None:
        """Rime streams headerless µ-law 8 kHz and PCM16 at its listed rates; no A-law (None: converted)."""
        if wire == MULAW_8K:
            encoding = "mulaw"
        elif wire.encoding == "pcm16" and wire.sample_rate in SAMPLE_RATES:
            encoding = "pcm"
        else:
            return None
        return with_attributes(
            self, encoding=encoding, sample_rate=wire.sample_rate, audio_format=wire, output_format=encoding
        )

    @classmethod
    def for_twilio(cls, **kwargs: Any) -> Self:
        """µ-law 8 kHz (``Accept: audio/x-mulaw``): Twilio's wire format, no transcoding."""
        return cls._with_format("mulaw", 8000, kwargs)

    @classmethod
    def for_telnyx(cls, **kwargs: Any) -> Self:
        """PCM16 16 kHz: Telnyx's L16/16000 stream format."""
        return cls._with_format("pcm", 16000, kwargs)

    @classmethod
    def _with_format(cls, encoding: str, rate: int, kwargs: dict[str, Any]) -> Self:
        if "encoding" in kwargs or "sample_rate" in kwargs:
            raise PatterConfigError(f"{_OWNER}: for_twilio()/for_telnyx() choose encoding and sample_rate.")
        return cls(encoding=encoding, sample_rate=rate, **kwargs)

    def __repr__(self) -> str:
        return (
            f"RimeTTS(model={self.model!r}, speaker={self.speaker!r}, encoding={self.encoding!r}, "
            f"sample_rate={self.sample_rate})"
        )

    def body(self, text: str) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "text": text,
            "modelId": self.model,
            "samplingRate": self.sample_rate,
            "lang": self.lang,
            **self.options,
        }

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield audio in ``output_format`` as Rime streams it; blank text sends no request."""
        pieces = split_text(text, self._max_chars) if self._max_chars else [text.strip()]
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": ACCEPT[self.encoding]}
        for piece in pieces:
            if not piece:
                continue
            async for chunk in self._http.stream(
                self._url,
                headers=headers,
                json_body=self.body(piece),
                sample_width=self.audio_format.bytes_per_sample,
            ):
                yield chunk

    async def close(self) -> None:
        """Close the pooled connection(s); the instance reconnects on demand."""
        await self._http.aclose()


TTS = RimeTTS

__all__ = ["ACCEPT", "MIST_MAX_CHARS", "TTS", "RimeTTS", "default_speaker"]
