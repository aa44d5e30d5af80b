"""The server's state: a frozen config and a small runtime object, both built by ``build_state``.

:class:`ServerConfig` is what ``serve()`` / ``asgi_app()`` decided and never changes while serving.
:class:`ServerState` holds what does change: the public host (a quick tunnel only knows it once up), the
live calls, the per-IP socket counts, the stream-token gate, admission control, the outbound-call book and
the server-level event bus. Routes
reach the carrier through ``config.carrier`` and never ask which carrier it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from getpatter.call.bus import EventBus
from getpatter.call.session import CallRuntime, CallSession
from getpatter.carriers.base import Carrier
from getpatter.server.admission import Admission
from getpatter.server.calls import OutboundRegistry
from getpatter.server.limits import SocketLimiter
from getpatter.server.stream_gate import StreamGate

__all__ = ["ServerConfig", "ServerState"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What one server was built with."""

    #: The carrier (its REST client, routes and dial request); closed when ``serve()`` ends.
    carrier: Carrier
    #: Webhook signature checks (always on outside tests of the checks themselves).
    verify_signatures: bool = True
    #: ``serve(recording=True)``: the carrier records every call.
    recording: bool = False
    #: ``serve(voicemail_message=...)``: left on a machine when the call gave none of its own.
    default_voicemail: str = ""
    #: Unauthenticated media sockets (before their stream token is verified) allowed per client address
    #: (``PATTER_MAX_SOCKETS_PER_IP``; 0 = no cap).
    max_sockets_per_ip: int = 10


@dataclass(slots=True, eq=False)
class ServerState:
    """Everything the routes need at run time. One per ``serve()`` / ``asgi_app()``."""

    config: ServerConfig
    #: What every call gets: the agent, the user's callbacks, observers, the carrier's call control.
    runtime: CallRuntime
    #: Public ``host[:port]`` carriers call back; set late when a quick tunnel provides it.
    webhook_host: str
    #: Server-level bus for call-progress events from carrier webhooks (status, AMD, recordings).
    events: EventBus
    #: Outbound calls placed through this server (``phone.call()``).
    outbound: OutboundRegistry
    #: Per-IP cap on *unauthenticated* media sockets (before their stream token is verified).
    socket_limiter: SocketLimiter
    #: Media-socket admission: stream-token keys (``PATTER_STREAM_SECRET``, else the carrier's secret) and
    #: their one-socket-per-token ledger, trusted proxies, refusal log.
    stream_gate: StreamGate = field(repr=False)
    #: Admission control: which new calls this server takes (``try_admit`` -> a ticket released at call
    #: end) and what ``/health`` reports (``server/admission.py``).
    admission: Admission = field(default_factory=Admission)
    #: Live calls by media-socket key.
    sessions: dict[str, CallSession] = field(default_factory=dict)

    @property
    def carrier(self) -> Carrier:
        return self.config.carrier
