"""How a call is ending: one frozen value per call, replaced as events decide it.

``CallSession`` keeps a single :class:`CallEnd`; every path that may end a call (the carrier's stop,
the socket closing, the watchdog, an agent hang-up, a transfer, a lost speech engine, a media flood)
replaces it through one of the transitions below, so the rules live here and not in loose flags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

#: The ``CallEnded.reason`` a call can end with.
EndReason = Literal[
    "caller_hangup",
    "socket_closed",
    "stopped",
    "media_flood",
    "protocol_error",
    "no_media",
    "max_duration",
    "agent_hangup",
    "transferred",
    "error",
    "server_shutdown",
]


@dataclass(frozen=True, slots=True)
class CallEnd:
    """The reason the call will end with, and what has been done about ending it."""

    reason: EndReason = "caller_hangup"
    #: Our side asked for the end (agent hang-up, transfer, engine loss): the carrier stopping the stream
    #: afterwards is the consequence, not the reason.
    hangup_requested: bool = False
    #: The carrier has been told to end the call (REST hang-up, apology then hang-up): do not ask again.
    carrier_ending: bool = False
    #: ``CallEnded.error_code`` when the call failed.
    error_code: str | None = None
    #: A cause on our side ended the call at once (watchdog, media flood, protocol error): the socket
    #: closing because of it is its consequence, not a new reason.
    ended_here: bool = False

    def because(self, reason: EndReason) -> CallEnd:
        """A cause on our side that ends the call now (watchdog, media flood, protocol error)."""
        return replace(self, reason=reason, ended_here=True)

    def carrier_stopped(self, reason: EndReason) -> CallEnd:
        """The carrier stopped the stream (or the socket closed): the reason, unless our side ended it."""
        return self if self.hangup_requested or self.ended_here else replace(self, reason=reason)

    def requested(self, reason: EndReason) -> CallEnd:
        """Our side asked to end the call, for ``reason``."""
        return replace(self, reason=reason, hangup_requested=True)

    def carrier_told(self) -> CallEnd:
        return replace(self, carrier_ending=True)

    def failed(self, error_code: str) -> CallEnd:
        return replace(self, reason="error", error_code=error_code)
