"""The TTS interface every text-to-speech provider implements.

``synthesize`` yields audio in ``output_format`` as soon as the vendor streams it. Chunks may have any
length (even odd byte counts for PCM16): the caller re-frames them. Billing is per character of ``text``.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from getpatter.audio.format import PCM16_16K, AudioFormat


class TTS(abc.ABC):
    """A text-to-speech provider (configuration, shareable across calls)."""

    provider_id: str = ""
    model: str = ""
    output_format: AudioFormat = PCM16_16K

    @abc.abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Stream the audio of ``text``. Raises PatterConnectionError/AuthenticationError on failure."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections."""
