"""The STT interface every speech-to-text provider implements (ARCHITECTURE.md, "Base interfaces").

A provider object is configuration only and may serve many calls at once: each call opens its own
:class:`STTStream`. Audio goes in as ``input_format`` (PCM16 16 kHz unless a carrier-native variant such
as ``for_twilio()`` says otherwise); events come out as the vendor produces them.

**Carrier-native by default.** A provider whose audio format the user did not choose
(``format_pinned`` False) is asked, on each call, for the carrier's own wire format when its vendor takes
it (:meth:`STT.for_wire`): mu-law 8 kHz on Twilio, L16 16 kHz on Telnyx. Caller audio then reaches the
vendor untouched. A pinned format (an explicit ``encoding``/``sample_rate``, or ``for_twilio()``) is kept
and the call layer converts to it.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from getpatter._provider import ProviderAttributes, wire_variant
from getpatter.audio.format import PCM16_16K, AudioFormat


@dataclass(frozen=True, slots=True)
class Transcript:
    """A piece of recognised speech.

    ``is_final``: this text will not change any more. ``end_of_turn``: the vendor judged that the speaker
    finished (Deepgram ``speech_final``/``UtteranceEnd``, AssemblyAI ``end_of_turn``, ...).
    """

    text: str
    is_final: bool
    end_of_turn: bool = False
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The vendor's own voice-activity signal (used as a barge-in hint)."""


STTEvent = Transcript | SpeechStarted


class STTStream(abc.ABC):
    """One recognition session, for one call."""

    #: Seconds of audio sent so far, the billing unit of most STT vendors.
    audio_seconds: float = 0.0

    @abc.abstractmethod
    async def send(self, audio: bytes) -> None:
        """Queue audio in the provider's ``input_format``; never blocks on the network for long."""

    @abc.abstractmethod
    async def finalize(self) -> None:
        """Ask the vendor to flush what it has heard so far as final text (turn end forced by our VAD)."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[STTEvent]:
        """Events until the stream is closed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush, end the iteration, release the connection. Idempotent."""


class STT(ProviderAttributes, abc.ABC):
    """A speech-to-text provider (configuration, shareable across calls)."""

    #: Key into the price table (API.md D.3).
    provider_id: str = ""
    model: str = ""
    input_format: AudioFormat = PCM16_16K
    #: True for batch recognisers (Whisper over HTTP, local Whisper): they transcribe only when told the
    #: caller stopped. The pipeline then calls ``finalize()`` on its own VAD's end of speech, and the
    #: stream answers with one final ``Transcript(..., end_of_turn=True)``.
    needs_vad_end_of_turn: bool = False
    #: True when the user chose ``input_format`` (explicit arguments or a ``for_*()`` factory). Providers
    #: that can take a carrier's format set it False when left at their defaults; see :meth:`for_wire`.
    format_pinned: bool = True

    def for_wire(self, wire: AudioFormat) -> STT:
        """This provider for a call whose carrier sends ``wire``: itself when its format is pinned or
        already ``wire``, else (once per format, then shared) a copy asking the vendor for ``wire`` if the
        vendor takes it."""
        if self.format_pinned or wire == self.input_format:
            return self
        return wire_variant(self, wire, self._wire_native)

    def _wire_native(self, wire: AudioFormat) -> STT | None:
        """A copy of this provider taking ``wire`` (``with_attributes``), or None: the vendor cannot."""
        return None

    @abc.abstractmethod
    async def open(self) -> STTStream:
        """Connect and return a live stream. Raises PatterConnectionError/AuthenticationError."""
