"""What a carrier's routes may use of the server that mounts them (implemented by ``server/host.py``).

Carriers sit below the server: their routes reach the call registry, the server's event bus and the
media-socket runner only through these protocols, so a carrier imports nothing of ``server/`` or
``call/`` and the server never learns which carrier it runs.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from getpatter.carriers.base import Classification, MediaCodec

__all__ = ["CallBook", "CarrierHost", "MachineVerdict", "PlacedCall", "StreamDirection"]

StreamDirection = Literal["inbound", "outbound"]


class MachineVerdict(Protocol):
    @property
    def classification(self) -> str: ...


class PlacedCall(Protocol):
    """One outbound call's record, as a carrier's callbacks read it."""

    @property
    def placed(self) -> bool:
        """This instance placed the call (``phone.call()``), not just heard of it."""
        ...

    @property
    def answered(self) -> bool: ...

    @property
    def first_message(self) -> str: ...

    @property
    def machine(self) -> MachineVerdict | None: ...

    #: Set by the carrier once it starts leaving the voicemail message (at most once per call).
    voicemail_started: bool


class CallBook(Protocol):
    """The server's book of outbound calls (``server/calls.py``), as carrier callbacks update it."""

    def get(self, call_id: str) -> PlacedCall | None: ...

    def status(
        self,
        call_id: str,
        carrier: str,
        status: str,
        *,
        raw: str = "",
        direction: str = "outbound",
        sequence: int | None = None,
        duration_seconds: float | None = None,
    ) -> None:
        """A call-status change, in Twilio's words for every carrier (``in-progress``, ``completed``)."""
        ...

    def machine_detected(
        self, call_id: str, carrier: str, classification: Classification, raw: str
    ) -> object | None:
        """Record the AMD verdict; ``None`` when the call already had one."""
        ...

    def voicemail_for(self, call_id: str) -> str: ...

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """Run a carrier reaction (a REST command) after the webhook has been answered."""
        ...


class CarrierHost(Protocol):
    """The server, as one carrier's routes see it."""

    @property
    def webhook_host(self) -> str:
        """The public ``host[:port]`` carriers call back (read per request: a quick tunnel sets it late)."""
        ...

    @property
    def verify_signatures(self) -> bool: ...

    @property
    def outbound(self) -> CallBook: ...

    def recording_saved(
        self,
        call_id: str,
        carrier: str,
        *,
        url: str,
        recording_id: str,
        status: str = "completed",
        duration_seconds: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """A carrier recording is available: emitted as ``RecordingSaved`` on the server bus."""
        ...

    async def admit(self, call_id: str, direction: StreamDirection) -> bool:
        """Whether this server takes the new call ``call_id`` (``server/admission.py``): ``True`` reserves
        its place until its media socket starts; ``False`` (counted and reported by the server) means
        the carrier must refuse the call on its own terms, e.g. busy, without answering it."""
        ...

    def stream_token(self, call_id: str, direction: StreamDirection) -> str:
        """A signed token for the one media socket of ``call_id`` (``server/stream_tokens.py``): the
        carrier puts it in the stream it hands out (URL query or stream parameter, under
        :data:`~getpatter.carriers.base.STREAM_TOKEN_PARAM`); the socket is refused without it."""
        ...

    async def run_media(
        self,
        websocket: WebSocket,
        codec: MediaCodec,
        *,
        call_id: str,
        direction: StreamDirection,
        token_subject: str = "",
        url_token: str | None = None,
    ) -> None:
        """Run one call on an (unaccepted) media WebSocket until it ends, once its ``start`` presented a
        valid stream token (refused with 1008 otherwise, before any vendor connection).

        ``call_id``: the id the URL names (``""`` when the path names none, e.g. one path for every
        outbound stream; ``start`` then brings it). ``token_subject``: what the token names when it is not
        the call id (:data:`~getpatter.carriers.base.DIALLED_STREAM_SUBJECT`). ``url_token``: the token
        when the URL carried it; ``None``: it is in ``start``'s stream parameters."""
        ...

    async def run_trusted_media(self, websocket: WebSocket, codec: MediaCodec, *, carrier: str) -> None:
        """Run one inbound call on a media WebSocket (not yet accepted) whose route has authenticated the
        peer itself (the dashboard's in-page caller, behind the dashboard's token): no stream token. The
        first message must start the stream; the call is reported with ``carrier`` as its carrier and
        has no carrier REST control (hang-up closes the socket; transfers are refused)."""
        ...
