"""``Patter``'s server: bind, quick tunnel, number auto-configuration, graceful stop.

``Patter`` holds one :class:`Server` (it does not inherit from it) and hands it the app and state it
built; the server owns the uvicorn runner, the cloudflared process and the public host once a quick
tunnel provides it. Nothing here knows which carrier it serves: number set-up and closing go through the
state's :class:`~getpatter.carriers.base.Carrier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from getpatter._ready import ReadySignal
from getpatter.agent import Agent, check_can_take_calls
from getpatter.errors import PatterConfigError, PatterTypeError
from getpatter.settings import Settings
from getpatter.tunnels.config import CloudflareTunnel, Ngrok, Static, TunnelConfig
from getpatter.validation import validate_webhook_host

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.server.runner import ServerRunner
    from getpatter.server.state import ServerState
    from getpatter.tunnels.cloudflare import CloudflaredTunnel

log = logging.getLogger("getpatter")
Callback = Callable[..., Any]


class Server:
    """The serving side of one ``Patter``: at most one ``serve()`` at a time, restartable."""

    def __init__(
        self, *, phone_number: str, webhook_host: str, tunnel: TunnelConfig | None, settings: Settings
    ) -> None:
        self.phone_number = phone_number
        #: Public ``host[:port]``; ``""`` until known (a quick tunnel sets it once up, and clears it).
        self.webhook_host = webhook_host
        self.tunnel = tunnel
        self.settings = settings
        #: The state of the app last built by ``asgi_app()`` / ``serve()`` (what ``phone.call()`` uses).
        self.state: ServerState | None = None
        self.runner: ServerRunner | None = None
        self.tunnel_process: CloudflaredTunnel | None = None
        #: Set while a quick tunnel is expected or up: resolves with its host.
        self.tunnel_future: asyncio.Future[str] | None = None
        #: ``ready`` before ``serve()`` has started: settled by the next run (see ``_ready.py``).
        self.ready_signal = ReadySignal()

    def wants_quick_tunnel(self, tunnel: bool) -> bool:
        """``serve(tunnel=True)`` or ``Patter(tunnel=True / CloudflareTunnel())``; a known host conflicts."""
        if tunnel and self.webhook_host:
            raise PatterConfigError(
                f"serve(tunnel=True) conflicts with the webhook host {self.webhook_host!r} (from "
                "webhook_url or a Static/Ngrok tunnel). Fix: drop tunnel=True to use that host, or drop "
                "webhook_url to get a temporary trycloudflare.com host."
            )
        return tunnel or isinstance(self.tunnel, CloudflareTunnel)

    def expect_quick_tunnel(self) -> None:
        self.tunnel_future = asyncio.get_running_loop().create_future()

    async def serve(
        self, app: FastAPI, state: ServerState, *, port: int, quick_tunnel: bool, dashboard_token: str | None
    ) -> None:
        """Serve ``app`` until :meth:`stop` (or SIGINT/SIGTERM); ``dashboard_token`` is ``None`` without
        a dashboard, else its token (``""``: none required). The carrier is closed when serving ends."""
        from getpatter.server.runner import ServerRunner

        runner = ServerRunner(app, state, host=self.settings.bind_host, port=port)
        self.runner = runner
        self.ready_signal.follow(runner.ready)
        try:
            serving = asyncio.create_task(runner.run())
            bound = await asyncio.shield(runner.ready)
            if quick_tunnel and not await self._open_quick_tunnel(state, bound, serving):
                return
            log.info("getpatter listening on %s:%d for https://%s", runner.host, bound, self.webhook_host)
            if dashboard_token is not None:
                print_dashboard_banner(bound, dashboard_token)
            await state.carrier.configure_number(self.phone_number, self.webhook_host)
            await serving
        finally:
            await self._close_quick_tunnel()
            self.runner = None
            state.outbound.close()
            await state.carrier.close()

    @property
    def ready(self) -> asyncio.Future[int]:
        """Resolves with the bound port once :meth:`serve` is listening. May be read before ``serve()`` has
        started (``asyncio.create_task(phone.serve(agent)); await phone.ready``); raises what ``serve()``
        raised if it fails before listening."""
        if self.runner is not None:
            return self.runner.ready
        return self.ready_signal.future()

    @property
    def tunnel_ready(self) -> asyncio.Future[str]:
        """Resolves with the public host once the quick tunnel is up (at once if known)."""
        if self.tunnel_future is not None:
            return self.tunnel_future
        if self.runner is None:
            raise PatterConfigError("not serving: call serve() first")
        known: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        known.set_result(self.webhook_host)
        return known

    async def stop(self) -> None:
        """Stop serving; live calls are ended cleanly first. Idempotent."""
        if self.runner is not None:
            await self.runner.stop()

    async def stop_tunnel(self) -> None:
        if self.tunnel_process is not None:
            await self.tunnel_process.stop()

    async def _open_quick_tunnel(self, state: ServerState, port: int, serving: asyncio.Task[None]) -> bool:
        """Start cloudflared for ``port`` and adopt its host; ``False`` if serving stopped meanwhile."""
        from getpatter.tunnels.cloudflare import CloudflaredTunnel, origin_host

        assert self.tunnel_future is not None and self.runner is not None
        process = CloudflaredTunnel(port, origin=origin_host(self.settings.bind_host))
        self.tunnel_process = process
        starting = asyncio.create_task(process.start())
        await asyncio.wait({starting, serving}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # disconnect() or a signal while cloudflared was starting
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await serving
            return False
        if (error := starting.exception()) is not None:
            await self.runner.stop()
            with contextlib.suppress(Exception):
                await serving
            raise error
        host = starting.result()
        self.webhook_host = host
        state.webhook_host = host
        log.info("Tunnel ready: https://%s is now the webhook host", host)
        self.tunnel_future.set_result(host)
        return True

    async def _close_quick_tunnel(self) -> None:
        process, self.tunnel_process = self.tunnel_process, None
        if process is not None:
            await process.stop()
        if self.tunnel_future is not None:
            self.tunnel_future.cancel()  # no-op once resolved
            self.tunnel_future = None
            self.webhook_host = ""  # a quick-tunnel host dies with its process


def _resolve_tunnel(tunnel: object) -> TunnelConfig | None:
    if tunnel is None or tunnel is False:
        return None
    if tunnel is True:
        return CloudflareTunnel()
    if isinstance(tunnel, CloudflareTunnel | Static | Ngrok):
        return tunnel
    raise PatterTypeError(
        "tunnel must be True/False/None, CloudflareTunnel(), Static(hostname) or Ngrok(hostname), "
        f"got {type(tunnel).__name__}"
    )


def _resolve_webhook_host(webhook_url: str, tunnel: TunnelConfig | None) -> str:
    """One public host, whether it came from ``webhook_url`` or from a tunnel that knows its host."""
    host = validate_webhook_host(webhook_url, "webhook_url")
    if isinstance(tunnel, CloudflareTunnel) and host:
        raise PatterConfigError(
            f"webhook_url={host!r} conflicts with tunnel=CloudflareTunnel(), which gets a new random host on "
            "every start. Fix: drop webhook_url to use the tunnel, or drop tunnel to use your own host."
        )
    if isinstance(tunnel, Static | Ngrok):
        if host and host.lower() != tunnel.hostname.lower():
            raise PatterConfigError(
                f"webhook_url={host!r} differs from the tunnel hostname {tunnel.hostname!r}. "
                "Fix: pass only one of them (the tunnel's hostname is used as the webhook host)."
            )
        return tunnel.hostname
    return host


def check_serve_options(
    port: object, voicemail_message: object, *, recording: object, dashboard: object, tunnel: object
) -> None:
    """``serve()``'s own arguments, checked before anything is built."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise PatterTypeError(f"port must be an int, got {type(port).__name__}")
    if not 0 <= port <= 65535:
        raise PatterConfigError(f"port must be 1-65535 (or 0 for any free port), got {port}")
    for name, flag in (("recording", recording), ("dashboard", dashboard), ("tunnel", tunnel)):
        if not isinstance(flag, bool):
            raise PatterTypeError(f"{name} must be a bool, got {type(flag).__name__}")
    if not isinstance(voicemail_message, str):
        raise PatterConfigError(
            f"voicemail_message must be a str (or '' for none), got {type(voicemail_message).__name__}"
        )


def _resolve_agent(agent: Agent, on_message: Callback | None) -> Agent:
    """Checks that need both the agent and serve()'s callbacks."""
    if not isinstance(agent, Agent):
        raise PatterTypeError(
            f"agent must be the Agent returned by phone.agent(...), got {type(agent).__name__}"
        )
    check_can_take_calls(agent)
    if on_message is not None:
        if not isinstance(on_message, str) and not callable(on_message):
            raise PatterTypeError(
                "on_message must be a callable (sync or async) taking (event) or (event, call), or an "
                "https:// URL"
            )
        if agent.llm is not None:
            raise PatterConfigError("on_message and the agent's llm= are mutually exclusive: pass only one")
    elif agent.provider == "pipeline" and agent.llm is None:
        if not os.environ.get("OPENAI_API_KEY"):
            raise PatterConfigError(
                "this pipeline agent has no llm= and serve() got no on_message, and OPENAI_API_KEY is not "
                "set for the default OpenAI chat model. Fix: pass llm=..., on_message=..., or set the key."
            )
        from getpatter.llm.openai import OpenAILLM

        agent = replace(agent, llm=OpenAILLM())
    return agent


def print_dashboard_banner(port: int, token: str) -> None:
    """The dashboard URL, with its token when one is in effect, on standard output: the owner needs
    it (a generated token exists nowhere else), and log files and collectors must not get it."""
    url = f"http://127.0.0.1:{port}/"
    if token:
        print(f"getpatter dashboard: {url}?token={token}", flush=True)
        log.info("dashboard: %s (token required; the URL with the token is printed on stdout)", url)
    else:
        print(f"getpatter dashboard: {url}", flush=True)
        log.info("dashboard: %s", url)


def check_softphone_option(softphone: object) -> None:
    if not isinstance(softphone, bool):
        raise PatterTypeError(f"softphone must be a bool, got {type(softphone).__name__}")


def mount_softphone(
    app: FastAPI, state: ServerState, token: str, *, bind_host: str, webhook_host: str
) -> bool:
    """The dashboard's "Call this agent" softphone, where the dashboard is: always behind its token, and
    without one only while nothing but this machine can reach the server (an exposed dashboard opened
    with ``allow_insecure_dashboard=True`` gets no softphone: anyone could talk to the agent on the
    owner's bill). Returns whether it was mounted."""
    from getpatter.carriers import add_softphone_routes
    from getpatter.dashboard.auth import is_exposed
    from getpatter.server.host import ServerHost

    if not token and is_exposed(bind_host=bind_host, webhook_host=webhook_host):
        log.warning(
            "the dashboard's softphone is off: the server is reachable from other machines and the "
            "dashboard has no token (allow_insecure_dashboard). Fix: set dashboard_token"
        )
        return False
    add_softphone_routes(app, ServerHost(state), token=token)
    return True
