"""The FastAPI app factory: carrier webhooks, media sockets and health (load and admission), mountable in a
user's own app."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from getpatter._body_limit import BodyLimitMiddleware
from getpatter._version import __version__
from getpatter.server.host import ServerHost
from getpatter.server.state import ServerState

__all__ = ["ServerState", "create_app"]

log = logging.getLogger("getpatter.server")


def create_app(state: ServerState) -> FastAPI:
    """Build the app. Interactive API docs are off: this app faces carriers, not humans."""
    app = FastAPI(title="getpatter", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.patter = state

    @app.get("/health")
    async def health() -> JSONResponse:
        """Load for a load balancer: 200 while new calls are admitted, 503 (same body, ``status``
        ``busy``) while they would be refused, so traffic goes to another instance."""
        load = await state.admission.health()
        body = {
            "status": "ok" if load["accepting"] else "busy",
            "mode": "local",
            "active_calls": len(state.sessions),
            **load,
        }
        return JSONResponse(body, status_code=200 if load["accepting"] else 503)

    # The carrier mounts its own webhook routes and media socket (and imports only its own modules).
    state.carrier.add_routes(app, ServerHost(state))
    # Webhook bodies are refused past their cap while they stream in (everything else: 1 MiB default).
    app.add_middleware(BodyLimitMiddleware, caps=state.carrier.body_caps())
    return app
