"""What the rest of getpatter sees of a carrier.

The call layer sees a :class:`MediaCodec` (the media WebSocket protocol) and a :class:`CarrierControl`
(REST control of one live call). The server, outbound dialling and the call registry see one
:class:`Carrier` per server, built from the user's :class:`CarrierConfig` (``Twilio(...)``,
``Telnyx(...)``); it owns everything carrier-specific (webhook routes and paths, signature checks, the
answer and its stream URL, the dial request, recording, number setup, answering-machine vocabulary), so
nothing outside ``carriers/`` asks which carrier it is on. A new carrier is one new folder with a config
class and a :class:`Carrier`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from getpatter.audio.format import AudioFormat

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.carriers.host import CarrierHost

#: The answering-machine verdict, whatever the carrier's own vocabulary (each carrier maps onto it).
Classification = Literal["human", "machine", "fax", "unknown"]

#: Stream parameters every carrier passes to its media stream, read back by the call registry: the one
#: marking an outbound call, and the one carrying its first message (so any instance can run the call).
DIRECTION_PARAM = "direction"
FIRST_MESSAGE_PARAM = "first_message"
#: Carriers cap custom stream parameters (~500 characters); the full text stays in the registry.
MAX_PARAM_CHARS = 500
#: The stream parameter (Twilio ``<Parameter>``, Telnyx ``stream_url`` query field) carrying the signed
#: stream token (``server/stream_tokens.py``) that the media socket must present on ``start``.
STREAM_TOKEN_PARAM = "stream_token"
#: What a stream token minted at dial time names: the call has no id until the carrier answers the dial
#: request, so a carrier that builds the stream before dialling (inline instructions) can only present
#: this; the server then ties the token to the call through the call record (``Dialled.stream_token``).
DIALLED_STREAM_SUBJECT = "dialled"


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
    #: A protocol error ends the call instead of dropping the frame: for a peer that runs our own code
    #: (the dashboard's in-page caller), where a malformed frame is a bug or an attack, not line noise.
    strict: bool = False
    #: Strict codecs only: a larger socket message ends the call (``protocol_error``) before anything
    #: else reads it. 0: no cap of the codec's own (the per-socket budget still applies).
    max_message_bytes: int = 0

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

    def started_reply(self) -> str | None:
        """A message sent back once the stream has started and the call is registered (``None``: the
        protocol has none; carriers announce the call themselves)."""
        return None


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


@dataclass(frozen=True, slots=True)
class Dial:
    """One outbound call as the server asks a carrier to place it (options already validated)."""

    to: str
    from_: str
    first_message: str
    machine_detection: bool
    ring_timeout: int | None
    #: A signed stream token for :data:`DIALLED_STREAM_SUBJECT`, outbound, valid while the call rings: for
    #: carriers that must name the media stream in the dial request itself. Carriers that start the
    #: stream later (once answered) sign it then, through :class:`~getpatter.carriers.host.CarrierHost`.
    stream_token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Dialled:
    """What a carrier's dial request produced: the call id, and the stream token it handed the carrier
    (``""``: the carrier signs the stream later, naming the call id)."""

    call_id: str
    stream_token: str = field(default="", repr=False)


class Carrier(abc.ABC):
    """One carrier, for one server: its REST client, its routes and everything else carrier-specific.

    Built once per server by :meth:`CarrierConfig.build_carrier`; closed when the server stops.
    """

    #: The carrier's name (``"twilio"``), as events, metrics and call records report it.
    kind: ClassVar[str]
    #: Ring-time bounds in seconds that the carrier's dial request accepts.
    ring_limits: ClassVar[tuple[int, int]] = (1, 600)

    @abc.abstractmethod
    def add_routes(self, app: FastAPI, host: CarrierHost) -> None:
        """Mount the carrier's webhook routes and media WebSocket on ``app``; ``host`` is the server."""

    def body_caps(self) -> dict[str, int]:
        """Request-body caps (bytes) by path prefix for the carrier's webhooks, enforced while the body
        streams in (``getpatter/_body_limit.py``); other paths get the server's default cap."""
        return {}

    def progress_paths(self) -> tuple[str, ...]:
        """Paths of the webhooks that report on a placed call (status, answering machine, recording):
        in a fleet, the instance that receives one hands it to the instance that placed the call."""
        return ()

    def progress_call_id(self, path: str, body: bytes) -> str:
        """The call id a webhook at one of :meth:`progress_paths` names (``""``: none). Only a routing
        hint: the instance that handles the webhook still verifies it."""
        return ""

    @abc.abstractmethod
    def codec(self, params: Mapping[str, str] | None = None) -> MediaCodec:
        """A fresh media codec for one stream (``params``: what the stream URL carried)."""

    @abc.abstractmethod
    def control(self, call_id: str) -> CarrierControl | None:
        """REST control of a live call, or ``None`` when ``call_id`` cannot be one of this carrier's."""

    @abc.abstractmethod
    async def dial(self, dial: Dial, webhook_host: str) -> str | Dialled:
        """Place the call with everything the rest of it needs (stream, callbacks, AMD); its call id, or a
        :class:`Dialled` when the dial request carried ``dial.stream_token``."""

    @abc.abstractmethod
    async def start_recording(self, call_id: str, webhook_host: str) -> str:
        """Start the carrier's recording of a live call; the recording's id (may be ``""``)."""

    @abc.abstractmethod
    async def configure_number(self, number: str, webhook_host: str) -> None:
        """Best effort at ``serve()``: point ``number`` at this server (failures are logged, not raised,
        with the manual fix). A carrier with nothing to configure does nothing."""

    def stream_secret(self) -> str:
        """The carrier's own secret (``""``: none), which signs media-stream tokens when
        ``PATTER_STREAM_SECRET`` is unset: instances sharing a carrier account then agree on them with no
        extra configuration. Never logged."""
        return ""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the REST client."""


class CarrierConfig(abc.ABC):
    """What users pass as ``Patter(carrier=...)``: a frozen, validated configuration."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def build_carrier(self) -> Carrier:
        """The runtime :class:`Carrier` for one server (opens a REST client)."""
