"""The FastAPI app factory: carrier webhooks, media sockets and health, mountable in a user's own app."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from getpatter._version import __version__
from getpatter.call.session import CallRuntime, CallSession
from getpatter.carriers.twilio.rest import TwilioRestClient
from getpatter.server.twilio_routes import add_twilio_routes

log = logging.getLogger("getpatter.server")


@dataclass(slots=True)
class ServerState:
    """Everything the routes need. One per ``serve()``; calls are tracked in ``sessions``."""

    webhook_host: str
    runtime: CallRuntime
    twilio_auth_token: str = ""
    twilio: TwilioRestClient | None = None
    verify_signatures: bool = True
    sessions: dict[str, CallSession] = field(default_factory=dict)


def create_app(state: ServerState) -> FastAPI:
    """Build the app. Interactive API docs are off: this app faces carriers, not humans."""
    app = FastAPI(title="getpatter", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.patter = state

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "mode": "local", "active_calls": len(state.sessions)})

    if state.runtime.carrier == "twilio":
        add_twilio_routes(app, state)
    return app
