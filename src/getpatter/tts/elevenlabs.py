"""ElevenLabs text-to-speech over HTTP streaming: ``POST {base}/v1/text-to-speech/{voice_id}/stream``.

``output_format`` travels in the query string (not the body) and fixes the audio we yield: headerless
PCM16 at the named rate, or G.711 µ-law/A-law at 8 kHz. Left unset, each call asks for its carrier's own
format (``ulaw_8000`` on Twilio, ``pcm_16000`` on Telnyx L16; :meth:`ElevenLabsTTS.for_wire`), so audio
passes through without transcoding; :meth:`ElevenLabsTTS.for_twilio` spells the Twilio choice out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Self
from urllib.parse import quote

from getpatter._provider import with_attributes
from getpatter.audio.format import ALAW_8K, MULAW_8K, AudioFormat
from getpatter.errors import PatterConfigError
from getpatter.tts._http import HttpAudioStreamer, normalize_base_url, resolve_api_key
from getpatter.tts.base import TTS as BaseTTS

ELEVENLABS_BASE_URL: Final = "https://api.elevenlabs.io"
ENV_VAR: Final = "ELEVENLABS_API_KEY"
DEFAULT_VOICE_ID: Final = "EXAVITQu4vr4xnSDxMaL"

#: ``output_format`` values we can hand to the call layer, and what they decode as.
OUTPUT_FORMATS: Final[Mapping[str, AudioFormat]] = {
    "pcm_8000": AudioFormat("pcm16", 8000),
    "pcm_16000": AudioFormat("pcm16", 16000),
    "pcm_22050": AudioFormat("pcm16", 22050),
    "pcm_24000": AudioFormat("pcm16", 24000),
    "pcm_44100": AudioFormat("pcm16", 44100),
    "ulaw_8000": MULAW_8K,
    "alaw_8000": ALAW_8K,
}

#: Public premade voices addressable by (case-insensitive) name. Any other string is used as a voice id.
PREMADE_VOICES: Final[Mapping[str, str]] = {
    "rachel": "21m00Tcm4TlvDq8ikWAM",
    "sarah": "EXAVITQu4vr4xnSDxMaL",
    "roger": "CwhRBWXzGAHq8TQ4Fs17",
    "laura": "FGY2WhTYpPnrIDTdsKH5",
    "charlie": "IKne3meq5aSn9XLyUdCD",
    "george": "JBFqnCBsd6RMkjVDRZzb",
    "callum": "N2lVS1w4EtoT3dr4eOWO",
    "river": "SAz9YHcvj6GT2YYXdXww",
    "liam": "TX3LPaxmHKxFdv7VOQHJ",
    "alice": "Xb7hH8MSUJpSbSDYk0k2",
    "matilda": "XrExE9yKIg1WjnnlVkGX",
    "will": "bIHbv24MWmeRgasZH58o",
    "jessica": "cgSgspJ2msm6clMCkdW9",
    "eric": "cjVigY5qzO86Huf0OWal",
    "chris": "iP95p4xoKVk53GoZ742B",
    "brian": "nPczCjzI2devNBz1zQrb",
    "daniel": "onwK4e9ZLuTAKqWW03F9",
    "lily": "pFZP5JQG7iQjIQuC4Bku",
    "adam": "pNInz6obpgDQGcFmaJgB",
    "bill": "pqHfZKP75CvOlQylNhV4",
}

#: Keys ElevenLabs accepts inside ``voice_settings``.
VOICE_SETTING_KEYS: Final = frozenset(
    {"stability", "similarity_boost", "style", "use_speaker_boost", "speed"}
)


def resolve_voice_id(voice: str) -> str:
    """Map a premade voice name ("Rachel") to its id; anything else is assumed to already be an id."""
    cleaned = voice.strip()
    if not cleaned:
        raise PatterConfigError("ElevenLabsTTS: voice_id must be a voice id or a premade voice name.")
    return PREMADE_VOICES.get(cleaned.lower(), cleaned)


def audio_format_for(output_format: str) -> AudioFormat:
    """The :class:`AudioFormat` of an ElevenLabs ``output_format`` name; mp3/opus are not playable raw."""
    try:
        return OUTPUT_FORMATS[output_format]
    except KeyError:
        raise PatterConfigError(
            f"ElevenLabsTTS: unsupported output_format {output_format!r}. "
            f"Use one of: {', '.join(OUTPUT_FORMATS)}."
        ) from None


class ElevenLabsTTS(BaseTTS):
    """Streams ElevenLabs speech in ``output_format`` (unset: the carrier's format on a call, ``pcm_16000``
    on its own). ``provider_id`` ``elevenlabs``.

    ``voice_id`` takes an id or a premade name from :data:`PREMADE_VOICES`. ``voice_settings`` is sent as
    given (keys from :data:`VOICE_SETTING_KEYS`); ``language_code`` and ``optimize_streaming_latency``
    (0-4) only when set. ``timeout`` bounds connecting and each read of the stream.
    """

    provider_id = "elevenlabs"

    def __init__(
        self,
        api_key: str | None = None,
        voice_id: str = DEFAULT_VOICE_ID,
        model_id: str = "eleven_flash_v2_5",
        *,
        output_format: str | None = None,
        base_url: str = ELEVENLABS_BASE_URL,
        voice_settings: Mapping[str, float | bool] | None = None,
        language_code: str | None = None,
        optimize_streaming_latency: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        key = resolve_api_key(api_key, owner="ElevenLabsTTS", env_var=ENV_VAR)
        # Left unset: pcm_16000 on its own, the carrier's format on a call (for_wire: ulaw_8000 on Twilio).
        self.format_pinned = output_format is not None
        output_format = "pcm_16000" if output_format is None else output_format
        self.audio_format = audio_format_for(output_format)
        if not model_id:
            raise PatterConfigError("ElevenLabsTTS: model_id must be non-empty, e.g. 'eleven_flash_v2_5'.")
        if voice_settings is not None:
            unknown = sorted(set(voice_settings) - VOICE_SETTING_KEYS)
            if unknown:
                raise PatterConfigError(
                    f"ElevenLabsTTS: unknown voice_settings keys {unknown}; "
                    f"valid keys: {', '.join(sorted(VOICE_SETTING_KEYS))}."
                )
        if optimize_streaming_latency is not None and optimize_streaming_latency not in range(5):
            raise PatterConfigError(
                f"ElevenLabsTTS: optimize_streaming_latency must be 0-4 (got {optimize_streaming_latency})."
            )
        self.voice_id = resolve_voice_id(voice_id)
        self.voice = self.voice_id
        self.model = model_id
        self.output_format = output_format
        self.voice_settings = dict(voice_settings) if voice_settings is not None else None
        self.language_code = language_code
        self.optimize_streaming_latency = optimize_streaming_latency
        base = normalize_base_url(base_url, owner="ElevenLabsTTS")
        self._url = f"{base}/v1/text-to-speech/{quote(self.voice_id, safe='')}/stream"
        self._api_key = key
        self._http = HttpAudioStreamer(vendor="ElevenLabs TTS", secret=key, timeout=timeout)

    @property
    def model_id(self) -> str:
        return self.model

    def _wire_native(self, wire: AudioFormat) -> Self | None:
        """ElevenLabs produces the carriers' formats: ulaw_8000, alaw_8000 and pcm_<rate>."""
        name = next((n for n, fmt in OUTPUT_FORMATS.items() if fmt == wire), None)
        if name is None:
            return None
        return with_attributes(self, output_format=name, audio_format=wire)

    @classmethod
    def for_twilio(cls, **kwargs: Any) -> Self:
        """µ-law 8 kHz output: exactly Twilio's media-stream format, so audio passes through untouched."""
        return cls._with_format("ulaw_8000", kwargs)

    @classmethod
    def for_telnyx(cls, **kwargs: Any) -> Self:
        """PCM16 16 kHz output: Telnyx's L16/16000 stream format."""
        return cls._with_format("pcm_16000", kwargs)

    @classmethod
    def _with_format(cls, output_format: str, kwargs: dict[str, Any]) -> Self:
        if "output_format" in kwargs:
            raise PatterConfigError(
                "ElevenLabsTTS: for_twilio()/for_telnyx() choose output_format themselves; "
                "construct ElevenLabsTTS(output_format=...) directly to pick another."
            )
        return cls(output_format=output_format, **kwargs)

    def __repr__(self) -> str:
        return (
            f"ElevenLabsTTS(voice_id={self.voice_id!r}, model_id={self.model!r}, "
            f"output_format={self.output_format!r})"
        )

    def _params(self) -> dict[str, str]:
        params = {"output_format": self.output_format}
        if self.optimize_streaming_latency is not None:
            params["optimize_streaming_latency"] = str(self.optimize_streaming_latency)
        return params

    def _body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text, "model_id": self.model}
        if self.voice_settings is not None:
            body["voice_settings"] = self.voice_settings
        if self.language_code:
            body["language_code"] = self.language_code
        return body

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield audio in ``output_format`` as ElevenLabs streams it; blank text sends no request."""
        if not text.strip():
            return
        async for chunk in self._http.stream(
            self._url,
            headers={"xi-api-key": self._api_key},
            json_body=self._body(text),
            params=self._params(),
            sample_width=self.audio_format.bytes_per_sample,
        ):
            yield chunk

    async def close(self) -> None:
        """Close the pooled connection(s); the instance stays usable and reconnects on demand."""
        await self._http.aclose()


TTS = ElevenLabsTTS

__all__ = [
    "OUTPUT_FORMATS",
    "PREMADE_VOICES",
    "TTS",
    "ElevenLabsTTS",
    "audio_format_for",
    "resolve_voice_id",
]
