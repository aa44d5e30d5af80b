"""The TTS interface every text-to-speech provider implements.

``synthesize`` yields audio in ``audio_format`` as soon as the vendor streams it. Chunks may have any
length (even odd byte counts for PCM16): the caller re-frames them. Billing is per character of ``text``.

**Carrier-native by default**: a provider whose output format the user did not choose (``format_pinned``
False) is asked on each call for the carrier's wire format when the vendor produces it
(:meth:`TTS.for_wire`; ``ulaw_8000`` on Twilio), so its audio goes to the carrier without transcoding.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from getpatter._provider import ProviderAttributes, wire_variant
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
    #: True when the user chose the output format (an explicit argument or a ``for_*()`` factory).
    format_pinned: bool = True

    def for_wire(self, wire: AudioFormat) -> TTS:
        """This provider for a call whose carrier plays ``wire``: itself when its format is pinned or
        already ``wire``, else (once per format, then shared) a copy asking the vendor for ``wire`` if it
        can produce it. The copy shares the original's connection pool (a provider holding one socket per
        instance, like CartesiaTTS, gives the copy its own and closes it in its ``close()``)."""
        if self.format_pinned or wire == self.audio_format:
            return self
        return wire_variant(self, wire, self._wire_native)

    def _wire_native(self, wire: AudioFormat) -> TTS | None:
        """A copy of this provider producing ``wire`` (``with_attributes``), or None: the vendor cannot."""
        return None

    @abc.abstractmethod
    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Stream the audio of ``text``. Raises PatterConnectionError/AuthenticationError on failure."""

    async def close(self) -> None:
        """Release pooled connections."""
