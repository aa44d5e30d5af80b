"""What the call layer sees of a carrier: media events in, media messages out, and call control.

The call layer never knows which carrier it has. Each carrier supplies a :class:`MediaCodec` (its media
WebSocket protocol) and a :class:`CarrierControl` (its REST API for one live call).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from getpatter.audio.format import AudioFormat


class MediaProtocolError(ValueError):
    """A media-socket message that does not follow the carrier's protocol. The socket goes on."""


@dataclass(frozen=True, slots=True)
class MediaConnected:
    """The carrier opened the socket (Twilio ``connected``)."""


@dataclass(frozen=True, slots=True)
class MediaStarted:
    stream_id: str
    call_id: str
    custom_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaAudio:
    """Caller audio in the codec's ``wire_format``."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class MediaMark:
    """The carrier finished playing everything sent before the mark ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class MediaDtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class MediaStopped:
    """The carrier ended the stream (caller hung up, call transferred, ...)."""


CarrierEvent = MediaConnected | MediaStarted | MediaAudio | MediaMark | MediaDtmf | MediaStopped


class MediaCodec(abc.ABC):
    """One carrier's media WebSocket protocol, for one stream. Holds the stream id once started."""

    wire_format: AudioFormat

    @abc.abstractmethod
    def parse(self, message: str | bytes) -> CarrierEvent | None:
        """Decode one socket message. ``None`` for messages we ignore on purpose (unknown but harmless
        events). Raises :class:`MediaProtocolError` for malformed ones."""

    @abc.abstractmethod
    def audio(self, payload: bytes) -> str:
        """A message that plays ``payload`` (in ``wire_format``) to the caller."""

    @abc.abstractmethod
    def mark(self, name: str) -> str:
        """A message the carrier echoes back once everything sent before it has played."""

    @abc.abstractmethod
    def clear(self) -> str:
        """A message that drops all audio the carrier has buffered but not yet played."""


class CarrierControl(abc.ABC):
    """REST control of one live call."""

    @abc.abstractmethod
    async def hangup(self) -> None: ...

    @abc.abstractmethod
    async def transfer(self, number: str) -> None: ...

    async def say_and_hangup(self, text: str) -> None:
        """Speak ``text`` with the carrier's own TTS, then hang up (used when our audio path is gone).

        Carriers without such a verb just hang up.
        """
        await self.hangup()
