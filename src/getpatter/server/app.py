"""The FastAPI app factory: carrier webhooks, media sockets and health, mountable in a user's own app."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from getpatter._version import __version__
from getpatter.call.bus import EventBus
from getpatter.call.session import CallRuntime, CallSession
from getpatter.carriers.telnyx.rest import TelnyxRestClient
from getpatter.carriers.twilio.rest import TwilioRestClient
from getpatter.server.limits import SocketLimiter
from getpatter.server.outbound import OutboundRegistry, recording_observer
from getpatter.server.stream_gate import StreamGate

log = logging.getLogger("getpatter.server")


@dataclass(slots=True)
class ServerState:
    """Everything the routes need. One per ``serve()``; calls are tracked in ``sessions``."""

    webhook_host: str
    runtime: CallRuntime
    twilio_auth_token: str = field(default="", repr=False)
    twilio: TwilioRestClient | None = None
    telnyx: TelnyxRestClient | None = None
    telnyx_public_key: str = ""
    telnyx_strict_signatures: bool = False
    telnyx_stream_codec: str = "L16"
    verify_signatures: bool = True
    sessions: dict[str, CallSession] = field(default_factory=dict)
    #: Per-IP cap on *unauthenticated* media sockets (before their stream token is verified).
    socket_limiter: SocketLimiter = field(default_factory=lambda: SocketLimiter(10))
    #: Media-socket admission: stream-token keys (``PATTER_STREAM_SECRET`` or the carrier secret),
    #: trusted proxies, refusal log. ``build_state`` passes one keyed with the carrier's secret.
    stream_gate: StreamGate = field(default_factory=lambda: StreamGate.from_env(""), repr=False)
    #: Server-level bus for call-progress events from carrier webhooks (status, AMD, recordings).
    events: EventBus = field(default_factory=EventBus)
    #: ``serve(recording=True)``: the carrier records every call.
    recording: bool = False
    #: Outbound calls placed through this server (``phone.call()``).
    outbound: OutboundRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.outbound = OutboundRegistry(self.events)
        self.runtime.observers.extend([self.outbound.observe, recording_observer(self)])
        self.runtime.call_agent = self.outbound.agent_for


def create_app(state: ServerState) -> FastAPI:
    """Build the app. Interactive API docs are off: this app faces carriers, not humans."""
    app = FastAPI(title="getpatter", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.patter = state

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "mode": "local", "active_calls": len(state.sessions)})

    # Only the configured carrier's routes are imported: Telnyx's pull in Ed25519 (cryptography, ~7 MB).
    if state.runtime.carrier == "twilio":
        from getpatter.server.twilio_routes import add_twilio_routes

        add_twilio_routes(app, state)
    elif state.runtime.carrier == "telnyx":
        from getpatter.server.telnyx_routes import add_telnyx_routes

        add_telnyx_routes(app, state)
    return app
