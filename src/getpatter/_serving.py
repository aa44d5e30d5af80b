"""``Patter``'s serving lifecycle: bind, quick tunnel, number auto-configuration, graceful stop.

Split out of ``patter.py`` so the client class stays readable; ``Patter`` inherits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from getpatter.agent import Agent
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import PatterConfigError
from getpatter.settings import Settings
from getpatter.tunnels.config import CloudflareTunnel, TunnelConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.server.app import ServerState
    from getpatter.server.runner import ServerRunner
    from getpatter.tunnels.cloudflare import CloudflaredTunnel

log = logging.getLogger("getpatter")
Callback = Callable[..., Any]

CarrierConfig = Twilio | Telnyx


class _ServingMixin:
    """Needs the attributes ``Patter.__init__`` sets (declared here for the type checker)."""

    _runner: ServerRunner | None
    _state: ServerState | None
    _carrier: CarrierConfig | None
    _phone_number: str
    _webhook_host: str
    _tunnel: TunnelConfig | None
    _settings: Settings
    _tunnel_process: CloudflaredTunnel | None
    _tunnel_ready: asyncio.Future[str] | None
    dashboard_token: str

    asgi_app: Callable[..., FastAPI]  # provided by Patter
    flush_logs: Callable[..., Awaitable[None]]  # provided by Patter

    async def serve(
        self,
        agent: Agent,
        port: int = 8000,
        recording: bool = False,
        on_call_start: Callback | None = None,
        on_call_end: Callback | None = None,
        on_transcript: Callback | None = None,
        on_message: Callback | None = None,
        voicemail_message: str = "",
        on_metrics: Callback | None = None,
        dashboard: bool = True,
        dashboard_token: str = "",
        tunnel: bool = False,
    ) -> None:
        """Answer calls until :meth:`disconnect` (or SIGINT/SIGTERM). Binds ``PATTER_BIND_HOST:port``."""
        from getpatter.server.runner import ServerRunner

        if isinstance(port, bool) or not isinstance(port, int):
            raise TypeError(f"port must be an int, got {type(port).__name__}")
        if not 0 <= port <= 65535:
            raise PatterConfigError(f"port must be 1-65535 (or 0 for any free port), got {port}")
        for name, flag in (("recording", recording), ("dashboard", dashboard), ("tunnel", tunnel)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if not isinstance(voicemail_message, str):
            raise PatterConfigError(
                f"voicemail_message must be a str (or '' for none), got {type(voicemail_message).__name__}"
            )
        quick_tunnel = self._wants_quick_tunnel(tunnel)
        if self._runner is not None:
            raise PatterConfigError("this Patter is already serving; call disconnect() first")
        if self._carrier is None:
            raise PatterConfigError(
                "serve() needs a carrier. Fix: Patter(carrier=Twilio(), phone_number=...)"
            )
        if quick_tunnel:
            _resolve_agent(agent, on_message)  # fail before any tunnel bookkeeping
            self._tunnel_ready = asyncio.get_running_loop().create_future()
        app = self.asgi_app(
            agent,
            on_call_start=on_call_start,
            on_call_end=on_call_end,
            on_transcript=on_transcript,
            on_message=on_message,
            on_metrics=on_metrics,
            dashboard=dashboard,
            dashboard_token=dashboard_token,
        )
        assert self._state is not None
        self._state.recording = recording
        self._state.outbound.default_voicemail = voicemail_message.strip()
        runner = ServerRunner(app, self._state, host=self._settings.bind_host, port=port)
        self._runner = runner
        try:
            serving = asyncio.create_task(runner.run())
            bound = await asyncio.shield(runner.ready)
            if quick_tunnel and not await self._open_quick_tunnel(bound, serving):
                return
            log.info("getpatter listening on %s:%d for https://%s", runner.host, bound, self._webhook_host)
            if dashboard:
                self._print_dashboard_banner(bound)
            await self._point_number_at_us()
            await serving
        finally:
            await self._close_quick_tunnel()
            self._runner = None
            if self._state is not None:
                self._state.outbound.close()
                for client in (self._state.twilio, self._state.telnyx):
                    if client is not None:
                        await client.close()

    def _print_dashboard_banner(self, port: int) -> None:
        """The dashboard URL, with its token when one is in effect, on standard output: the owner needs
        it (a generated token exists nowhere else), and log files and collectors must not get it."""
        url = f"http://127.0.0.1:{port}/"
        if self.dashboard_token:
            print(f"getpatter dashboard: {url}?token={self.dashboard_token}", flush=True)
            log.info("dashboard: %s (token required; the URL with the token is printed on stdout)", url)
        else:
            print(f"getpatter dashboard: {url}", flush=True)
            log.info("dashboard: %s", url)

    @property
    def ready(self) -> asyncio.Future[int]:
        """Resolves with the bound port once :meth:`serve` is listening."""
        if self._runner is None:
            raise PatterConfigError("not serving: call serve() first")
        return self._runner.ready

    @property
    def tunnel_ready(self) -> asyncio.Future[str]:
        """Resolves with the public host once :meth:`serve`'s quick tunnel is up (at once if known)."""
        if self._tunnel_ready is not None:
            return self._tunnel_ready
        if self._runner is None:
            raise PatterConfigError("not serving: call serve() first")
        known: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        known.set_result(self._webhook_host)
        return known

    # -- outbound --------------------------------------------------------------------------------------

    async def disconnect(self) -> None:
        """Stop serving and the quick tunnel; live calls are ended cleanly first. Idempotent; ``serve()``
        may be called again (a quick tunnel then gets a new host)."""
        if self._runner is not None:
            await self._runner.stop()
        await self.flush_logs()
        if self._tunnel_process is not None:
            await self._tunnel_process.stop()

    def _wants_quick_tunnel(self, tunnel: bool) -> bool:
        """``serve(tunnel=True)`` or ``Patter(tunnel=True / CloudflareTunnel())``; a known host conflicts."""
        if tunnel and self._webhook_host:
            raise PatterConfigError(
                f"serve(tunnel=True) conflicts with the webhook host {self._webhook_host!r} (from "
                "webhook_url or a Static/Ngrok tunnel). Fix: drop tunnel=True to use that host, or drop "
                "webhook_url to get a temporary trycloudflare.com host."
            )
        return tunnel or isinstance(self._tunnel, CloudflareTunnel)

    async def _open_quick_tunnel(self, port: int, serving: asyncio.Task[None]) -> bool:
        """Start cloudflared for ``port`` and adopt its host; ``False`` if serving stopped meanwhile."""
        from getpatter.tunnels.cloudflare import CloudflaredTunnel, origin_host

        assert self._state is not None and self._tunnel_ready is not None and self._runner is not None
        process = CloudflaredTunnel(port, origin=origin_host(self._settings.bind_host))
        self._tunnel_process = process
        starting = asyncio.create_task(process.start())
        await asyncio.wait({starting, serving}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():  # disconnect() or a signal while cloudflared was starting
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await serving
            return False
        if (error := starting.exception()) is not None:
            await self._runner.stop()
            with contextlib.suppress(Exception):
                await serving
            raise error
        host = starting.result()
        self._webhook_host = host
        self._state.webhook_host = host
        log.info("Tunnel ready: https://%s is now the webhook host", host)
        self._tunnel_ready.set_result(host)
        return True

    async def _close_quick_tunnel(self) -> None:
        process, self._tunnel_process = self._tunnel_process, None
        if process is not None:
            await process.stop()
        if self._tunnel_ready is not None:
            self._tunnel_ready.cancel()  # no-op once resolved
            self._tunnel_ready = None
            self._webhook_host = ""  # a quick-tunnel host dies with its process

    async def _point_number_at_us(self) -> None:
        """Best effort: set the Twilio number's VoiceUrl to our webhook, and say exactly what changed."""
        state = self._state
        if state is None or state.twilio is None:
            return
        voice_url = f"https://{self._webhook_host}/webhooks/twilio/voice"
        try:
            changed = await state.twilio.configure_number(self._phone_number, voice_url)
        except Exception as exc:
            log.warning(
                "could not point %s at %s (%s); set its Voice URL by hand in the Twilio console",
                self._phone_number,
                voice_url,
                exc,
            )
            return
        if changed:
            log.info("Twilio number %s: VoiceUrl set to %s (POST)", self._phone_number, voice_url)
        else:
            log.warning("%s is not a number of this Twilio account; VoiceUrl not changed", self._phone_number)


def _resolve_agent(agent: Agent, on_message: Callback | None) -> Agent:
    """Checks that need both the agent and serve()'s callbacks."""
    if not isinstance(agent, Agent):
        raise TypeError(f"agent must be the Agent returned by phone.agent(...), got {type(agent).__name__}")
    if on_message is not None:
        if isinstance(on_message, str):
            raise NotImplementedError("a remote on_message URL is not available in this build yet")
        if not callable(on_message):
            raise TypeError("on_message must be a callable (sync or async) taking (event) or (event, call)")
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
