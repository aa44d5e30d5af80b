"""OpenAI text-to-speech over ``POST {base_url}/audio/speech`` (streamed raw PCM).

We always ask for ``response_format: "pcm"``: headerless PCM16 mono at 24 kHz, the only rate OpenAI
offers, so ``audio_format`` is :data:`PCM16_24K` and the call layer resamples to the carrier's rate.
The same class serves any OpenAI-compatible ``/audio/speech`` endpoint through ``base_url``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from getpatter.audio.format import PCM16_24K
from getpatter.errors import PatterConfigError
from getpatter.tts._http import HttpAudioStreamer, normalize_base_url, resolve_api_key
from getpatter.tts.base import TTS as BaseTTS

OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
ENV_VAR: Final = "OPENAI_API_KEY"

#: Built-in voices accepted by ``/audio/speech`` (not every model supports every voice).
VOICES: Final = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
#: ``input`` longer than this is rejected by the API, so longer text is sent as several requests.
MAX_INPUT_CHARS: Final = 4096
_CUSTOM_VOICE_PREFIX: Final = "voice_"


def split_text(text: str, limit: int = MAX_INPUT_CHARS) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` chars, preferring whitespace so words stay whole."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


class OpenAITTS(BaseTTS):
    """Streams OpenAI speech as 24 kHz PCM16; ``provider_id`` is ``openai_tts`` (``openai_tts_hd`` for HD).

    ``voice`` is one of :data:`VOICES`, or a custom voice id starting with ``voice_``. ``instructions``
    (a style prompt) only works with the gpt-4o family, so it is refused up front for ``tts-1*``.
    ``timeout`` bounds connecting and each read, so a stalled stream fails instead of hanging the turn.
    """

    audio_format = PCM16_24K
    output_format = "pcm"  # OpenAI's response_format

    def __init__(
        self,
        api_key: str | None = None,
        voice: str = "alloy",
        model: str = "tts-1",
        *,
        base_url: str = OPENAI_BASE_URL,
        speed: float | None = None,
        instructions: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        key = resolve_api_key(api_key, owner="OpenAITTS", env_var=ENV_VAR)
        if voice not in VOICES and not voice.startswith(_CUSTOM_VOICE_PREFIX):
            raise PatterConfigError(
                f"OpenAITTS: unknown voice {voice!r}. Valid voices: {', '.join(VOICES)} "
                f"(or a custom voice id starting with {_CUSTOM_VOICE_PREFIX!r})."
            )
        if not model:
            raise PatterConfigError("OpenAITTS: model must be a non-empty model name, e.g. 'tts-1'.")
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise PatterConfigError(f"OpenAITTS: speed must be between 0.25 and 4.0 (got {speed}).")
        if instructions and model.startswith("tts-1"):
            raise PatterConfigError(
                f"OpenAITTS: instructions are not supported by {model!r}; use model='gpt-4o-mini-tts'."
            )
        self.model = model
        self.voice = voice
        self.speed = speed
        self.instructions = instructions
        self.provider_id = "openai_tts_hd" if model.startswith("tts-1-hd") else "openai_tts"
        self._url = normalize_base_url(base_url, owner="OpenAITTS") + "/audio/speech"
        self._api_key = key
        self._http = HttpAudioStreamer(vendor="OpenAI TTS", secret=key, timeout=timeout)

    def __repr__(self) -> str:
        return f"OpenAITTS(model={self.model!r}, voice={self.voice!r}, url={self._url!r})"

    def _body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "input": text,
            "voice": {"id": self.voice} if self.voice.startswith(_CUSTOM_VOICE_PREFIX) else self.voice,
            "response_format": "pcm",
        }
        if self.speed is not None:
            body["speed"] = self.speed
        if self.instructions:
            body["instructions"] = self.instructions
        return body

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield 24 kHz PCM16 as OpenAI streams it; blank text yields nothing and sends no request."""
        headers = {"Authorization": f"Bearer {self._api_key}"}
        for piece in split_text(text):
            async for chunk in self._http.stream(
                self._url, headers=headers, json_body=self._body(piece), sample_width=2
            ):
                yield chunk

    async def close(self) -> None:
        """Close the pooled connection(s); the instance stays usable and reconnects on demand."""
        await self._http.aclose()


TTS = OpenAITTS

__all__ = ["MAX_INPUT_CHARS", "TTS", "VOICES", "OpenAITTS", "split_text"]
