"""The TTS interface every text-to-speech provider implements.

``synthesize`` yields audio in ``audio_format`` as soon as the vendor streams it. Chunks may have any
length (even odd byte counts for PCM16): the caller re-frames them. Billing is per character of ``text``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from getpatter._provider import ProviderAttributes
from getpatter.audio.format import PCM16_16K, AudioFormat


class TTS(ProviderAttributes, abc.ABC):
    """A text-to-speech provider (configuration, shareable across calls)."""

    provider_id: str = ""
    model: str = ""
    voice: str = ""
    #: What :meth:`synthesize` yields; the call layer converts it to the carrier's wire format.
    audio_format: AudioFormat = PCM16_16K
    #: The same format in the vendor's own words, as sent to it (``"ulaw_8000"`` for ElevenLabs,
    #: ``"pcm_s16le"`` for Cartesia, ``"pcm"`` for OpenAI): what Patter SDK users read and assert on.
    output_format: str = "pcm_16000"

    @abc.abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Stream the audio of ``text``. Raises PatterConnectionError/AuthenticationError on failure."""

    async def close(self) -> None:
        """Release pooled connections."""
