"""Run the standalone dashboard (``patter dashboard``) as its own process: the app from
:func:`getpatter.dashboard.standalone.create_dashboard_app` under uvicorn, with the server's connection
limits. Here, not in ``dashboard/``, because running a process is the serving layer's job.
"""

from __future__ import annotations

import socket
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from getpatter.dashboard.routes import close_event_streams
from getpatter.dashboard.standalone import create_dashboard_app
from getpatter.server.connections import ServerLimits


class _DashboardServer(uvicorn.Server):
    """Ends open SSE streams first, so Ctrl-C does not wait for browsers to disconnect."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.dashboard_app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        close_event_streams(self.dashboard_app)
        await super().shutdown(sockets)


def run_dashboard(
    port: int = 8000, *, token: str = "", log_dir: str | Path | None = None, host: str = "127.0.0.1"
) -> None:
    """Serve the standalone dashboard until interrupted (what ``getpatter dashboard`` runs)."""
    app = create_dashboard_app(token=token, log_dir=log_dir)
    shown = f"http://127.0.0.1:{port}/" + (f"?token={token}" if token else "")
    print(f"getpatter dashboard: {shown}", flush=True)
    limits = ServerLimits.from_env().uvicorn_options()  # connection cap, timeouts, TCP_NODELAY
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5, **limits
    )
    _DashboardServer(config, app).run()


__all__ = ["run_dashboard"]
