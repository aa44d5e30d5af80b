"""Building (and serving) the ASGI app of ``Patter.serve()`` / ``Patter.asgi_app()``: state, fleet, dashboard.

:func:`build_app` is the one place the pieces meet: the server state (built once, complete), the
telemetry observers and outbound feed, the fleet membership (with ``redis_url``), and the dashboard and
softphone routes with their token. ``Patter`` keeps what it returns.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from getpatter._serving import Server, _resolve_agent, mount_softphone
from getpatter._telemetry import Telemetry
from getpatter.agent import Agent
from getpatter.call.bus import EventBus
from getpatter.carriers.base import CarrierConfig
from getpatter.errors import PatterConfigError
from getpatter.server.admission import ENV_FLEET_MAX_CALLS, AdmissionLimits
from getpatter.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.fleet.member import FleetMember

log = logging.getLogger("getpatter")
Callback = Callable[..., Any]


def per_process(limits: AdmissionLimits) -> AdmissionLimits:
    """``asgi_app()`` joins no fleet (``serve()`` does): a fleet limit from the environment cannot hold."""
    if limits.fleet_max_calls:
        log.warning(
            "%s applies to serve() only: asgi_app() counts calls per process (max_concurrent_calls)",
            ENV_FLEET_MAX_CALLS,
        )
        return replace(limits, fleet_max_calls=0)
    return limits


@dataclass(frozen=True, slots=True)
class AppContext:
    """What every app a ``Patter`` builds shares, fixed at ``Patter(...)``."""

    server: Server
    carrier: CarrierConfig | None
    settings: Settings
    telemetry: Telemetry
    events: EventBus
    fleet: tuple[str, str] | None
    log_root: Path | None


@dataclass(frozen=True, slots=True)
class BuiltApp:
    """What :func:`build_app` made: the app, its fleet membership (``None`` without a fleet) and the
    dashboard token (``None`` when no dashboard was mounted: the client's token stays as it was)."""

    app: FastAPI
    member: FleetMember | None
    dashboard_token: str | None


def build_app(
    ctx: AppContext,
    agent: Agent,
    *,
    on_call_start: Callback | None,
    on_call_end: Callback | None,
    on_transcript: Callback | None,
    on_message: Callback | None,
    on_metrics: Callback | None,
    dashboard: bool,
    dashboard_token: str,
    allow_insecure_dashboard: bool = False,
    recording: bool = False,
    voicemail_message: str = "",
    softphone: bool = True,
    admission: AdmissionLimits | None = None,
) -> BuiltApp:
    """Build the server state (once, complete) and the app on it; the state becomes ``server.state``."""
    from getpatter._pool import shared_ssl_context
    from getpatter.call.remote_message import resolve_on_message
    from getpatter.server.app import create_app
    from getpatter.server.build import build_state

    server, settings, telemetry = ctx.server, ctx.settings, ctx.telemetry
    # The vendors' HTTP pools share one TLS context; build it now, off the event loop, rather than on
    # the loop inside the first call's first answer.
    threading.Thread(target=shared_ssl_context, name="patter-tls-context", daemon=True).start()
    agent = _resolve_agent(agent, on_message)
    on_message = resolve_on_message(on_message, allow_private=settings.allow_private_webhooks)
    if not server.webhook_host and server.tunnel_future is None:  # a quick tunnel sets it once up
        raise PatterConfigError(
            "no public host for carrier webhooks. Fix: Patter(webhook_url='abc.example.com', ...) "
            "or Patter(tunnel=True, ...)"
        )
    state = build_state(
        carrier=ctx.carrier,
        webhook_host=server.webhook_host,
        agent=agent,
        on_call_start=on_call_start,
        on_call_end=on_call_end,
        on_transcript=on_transcript,
        on_message=on_message,
        observers=telemetry.observers(agent, on_metrics),
        events=ctx.events,
        recording=recording,
        voicemail_message=voicemail_message,
        settings=settings,
        admission=admission,
    )
    server.state = state
    telemetry.feed_outbound()
    app = create_app(state)
    member: FleetMember | None = None
    if ctx.fleet is not None:
        from getpatter.fleet.member import attach

        member = attach(ctx.fleet, app, state, telemetry.store)
    if ctx.log_root is None:
        log.info(
            "call logs are off (getpatter's default; the Patter SDK wrote them by default). "
            "To keep them: Patter(persist=True) or PATTER_LOG_DIR=auto"
        )
    token: str | None = None
    if dashboard:
        from getpatter.dashboard.auth import resolve_dashboard_token
        from getpatter.dashboard.routes import add_dashboard_routes

        quick = "quick-tunnel" if server.tunnel_future is not None else ""
        token = resolve_dashboard_token(
            dashboard_token,
            bind_host=settings.bind_host,
            webhook_host=server.webhook_host or quick,
            allow_insecure=allow_insecure_dashboard,
        )
        add_dashboard_routes(app, telemetry.store, token=token)
        if softphone:
            mount_softphone(
                app,
                state,
                token,
                bind_host=settings.bind_host,
                webhook_host=server.webhook_host or quick,
            )
    return BuiltApp(app=app, member=member, dashboard_token=token)


async def serve_app(
    server: Server, built: BuiltApp, *, port: int, quick_tunnel: bool, banner_token: str | None
) -> None:
    """Run ``built`` until stopped: its admission monitor on, its fleet joined (if any) meanwhile."""
    state = server.state
    assert state is not None
    member = built.member
    state.admission.ensure_monitor()
    try:
        async with member.joined() if member is not None else contextlib.nullcontext():
            await server.serve(
                built.app, state, port=port, quick_tunnel=quick_tunnel, dashboard_token=banner_token
            )
    finally:
        await state.admission.close()


__all__ = ["AppContext", "BuiltApp", "build_app", "per_process", "serve_app"]
