"""``Patter``: the client object. Resolves and validates every constructor option once, up front.

Everything downstream (server, carriers, metrics, call log) reads the resolved values from here, so a
misconfiguration fails at ``Patter(...)`` with a message naming the parameter, not mid-call.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TextIO

from getpatter._app_builder import AppContext, BuiltApp, build_app, per_process, serve_app
from getpatter._compat import check_agent_provider, reject_agent_kwargs, reject_client_kwargs
from getpatter._dialing import OutboundDialing
from getpatter._patter_checks import check_can_serve, check_client, client_params
from getpatter._ready import ReadySignal, settles_ready
from getpatter._serving import (
    Server,
    _resolve_agent,
    _resolve_tunnel,
    _resolve_webhook_host,
    check_serve_options,
    check_softphone_option,
)
from getpatter._telemetry import Telemetry
from getpatter.agent import Agent, build_agent
from getpatter.call.bus import EventBus
from getpatter.carriers.base import CarrierConfig
from getpatter.dashboard.notify_target import resolve_notify_target
from getpatter.fleet.join import install as install_fleet
from getpatter.fleet.join import resolve_fleet
from getpatter.metrics.pricing import ProviderPricing, merge_pricing
from getpatter.persist_root import resolve_log_root
from getpatter.server.admission import AdmissionLimits
from getpatter.settings import Settings
from getpatter.tunnels.config import TunnelConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.call.session import Observer
    from getpatter.dashboard.store import MetricsStore
    from getpatter.fleet.member import FleetMember
    from getpatter.guardrails import Guardrail
    from getpatter.llm.base import LLM
    from getpatter.server.runner import ServerRunner
    from getpatter.server.state import ServerState
    from getpatter.stt.base import STT
    from getpatter.tools.tool import Tool, ToolDecorator
    from getpatter.tts.base import TTS

Callback = Callable[..., Any]


class Patter(OutboundDialing):
    """A phone-enabled agent runtime.

    ``carrier`` is ``Twilio(...)`` or ``Telnyx(...)``; with a carrier, ``phone_number`` (E.164) is
    required. ``webhook_url`` is the bare public host carriers call back (or let ``tunnel`` provide
    it). ``pricing`` overrides default prices; ``persist`` turns per-call logs on/off (API.md A.2, C.1);
    ``dashboard_notify`` names the standalone dashboard (``patter dashboard``) every call is posted to:
    ``None`` reads ``PATTER_DASHBOARD_NOTIFY`` (default ``http://127.0.0.1:8000``), ``False`` turns it off,
    or a port, or the URL the dashboard prints (with its ``?token=``).
    """

    def __init__(
        self,
        carrier: CarrierConfig | None = None,
        phone_number: str = "",
        webhook_url: str = "",
        tunnel: TunnelConfig | bool | None = None,
        pricing: Mapping[str, Mapping[str, Any]] | None = None,
        persist: bool | str | os.PathLike[str] | None = None,
        dashboard_notify: bool | int | str | None = None,
        redis_url: str | None = None,
        **patter_only: object,
    ) -> None:
        # api_key=, mode=, twilio_sid=, ...: say what to use instead
        reject_client_kwargs(patter_only, client_params(Patter.__init__))
        number = check_client(carrier, phone_number)
        resolved_tunnel = _resolve_tunnel(tunnel)

        self._carrier: CarrierConfig | None = carrier
        self._phone_number = number
        self._tunnel = resolved_tunnel
        self._pricing: dict[str, ProviderPricing] = merge_pricing(pricing)
        self._log_root = resolve_log_root(persist)
        #: ``(url, prefix)`` of the Redis a fleet of instances shares while serving (``None`` = alone).
        self._fleet = resolve_fleet(redis_url)
        install_fleet(self._fleet)  # scheduled jobs wait for serve() to join the fleet
        self._settings = Settings.from_env()
        #: The serving side (runner, quick tunnel, state of the last app built); held, not inherited.
        self._server = Server(
            phone_number=number,
            webhook_host=_resolve_webhook_host(webhook_url, resolved_tunnel),
            tunnel=resolved_tunnel,
            settings=self._settings,
        )
        #: The token the dashboard requires ("" = open; generated when the server is exposed).
        self.dashboard_token = ""
        #: Process-wide events (API.md C14): every call's events (transcripts, turns, tools, usage, the
        #: call summary) and the server's (status callbacks, machine detection, recordings). Subscribe by
        #: class or by documented name: ``phone.events.on("transcript_final", handler)``.
        self.events = EventBus()
        #: Metrics store, call log and the standalone dashboard every call is posted to (``None`` = off;
        #: see dashboard/notify.py): the observers and outbound feed of every app built.
        self._telemetry = Telemetry(
            events=self.events,
            pricing=self._pricing,
            telephony_provider=carrier.kind if carrier is not None else "",
            log_root=self._log_root,
            notify_target=resolve_notify_target(dashboard_notify),
            settings=self._settings,
        )
        #: The fleet membership of the last app built (``None`` without ``redis_url``).
        self._member: FleetMember | None = None
        #: What every app built shares (see _app_builder.py).
        self._app_context = AppContext(
            self._server, carrier, self._settings, self._telemetry, self.events, self._fleet, self._log_root
        )

    @property
    def carrier(self) -> CarrierConfig | None:
        return self._carrier

    @property
    def phone_number(self) -> str:
        return self._phone_number

    @property
    def webhook_host(self) -> str:
        """Public ``host[:port]`` for carrier callbacks; ``""`` until known (a quick tunnel not yet up)."""
        return self._server.webhook_host

    @property
    def _runner(self) -> ServerRunner | None:
        return self._server.runner

    @property
    def _state(self) -> ServerState | None:
        """The state of the app last built by :meth:`asgi_app` / :meth:`serve`."""
        return self._server.state

    @property
    def tunnel(self) -> TunnelConfig | None:
        return self._tunnel

    @property
    def pricing(self) -> Mapping[str, ProviderPricing]:
        """The effective price table: defaults merged with ``pricing=`` overrides (read-only view)."""
        return MappingProxyType(self._pricing)

    @property
    def log_root(self) -> Path | None:
        """Root of per-call logs, or ``None`` when persistence is off."""
        return self._log_root

    @property
    def settings(self) -> Settings:
        return self._settings

    # -- agents --------------------------------------------------------------------------------------
    @staticmethod
    def tool(*args: Any, **kwargs: Any) -> Tool | ToolDecorator:
        """``Patter.tool(...)``, the spelling Patter's docs use: the same as :func:`getpatter.tool`."""
        from getpatter.tools.tool import tool

        made: Tool | ToolDecorator = tool(*args, **kwargs)
        return made

    @staticmethod
    def guardrail(*args: Any, **kwargs: Any) -> Guardrail:
        """``Patter.guardrail(...)``, the spelling Patter's docs use: same as :func:`getpatter.guardrail`."""
        from getpatter.guardrails import guardrail

        return guardrail(*args, **kwargs)

    def agent(
        self,
        system_prompt: str,
        *,
        engine: Any = None,
        stt: STT | None = None,
        llm: LLM | None = None,
        tts: TTS | None = None,
        voice: str | None = None,
        model: str | None = None,
        language: str = "en",
        first_message: str = "",
        tools: Sequence[Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        guardrails: Sequence[Any] | None = None,
        hooks: Any = None,
        text_transforms: Sequence[Callable[[str], str]] | None = None,
        vad: Any = None,
        audio_filter: Any = None,
        background_audio: Any = None,
        barge_in_threshold_ms: int = 300,
        aggressive_first_flush: bool = False,
        **patter_only: object,
    ) -> Agent:
        """Describe an agent (API.md A.3). Mode: ``engine`` > any of stt/llm/tts (pipeline) > realtime.

        Patter SDK keywords (``provider=``, 0.7-only options, pre-0.5 keys) are checked by
        :func:`getpatter._compat.reject_agent_kwargs`: ``provider=`` must agree with the mode.
        """
        provider = reject_agent_kwargs(
            patter_only, pipeline_given=engine is None and (stt, llm, tts) != (None, None, None)
        )
        agent = build_agent(
            system_prompt,
            engine=engine,
            stt=stt,
            llm=llm,
            tts=tts,
            voice=voice,
            model=model,
            language=language,
            first_message=first_message,
            tools=tools,
            variables=variables,
            guardrails=guardrails,
            hooks=hooks,
            text_transforms=text_transforms,
            vad=vad,
            audio_filter=audio_filter,
            background_audio=background_audio,
            barge_in_threshold_ms=barge_in_threshold_ms,
            aggressive_first_flush=aggressive_first_flush,
        )
        check_agent_provider(provider, agent.provider)
        return agent

    # -- serving -------------------------------------------------------------------------------------
    @property
    def _ready_signal(self) -> ReadySignal:
        """Settles ``ready`` from the next ``serve()`` run (also when it fails before listening)."""
        return self._server.ready_signal

    @settles_ready
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
        softphone: bool = True,
        max_concurrent_calls: int | None = None,
        fleet_max_concurrent_calls: int | None = None,
    ) -> None:
        """Answer calls until :meth:`disconnect` (or SIGINT/SIGTERM). Binds ``PATTER_BIND_HOST:port``.

        ``softphone``: the dashboard's "Call this agent" button (the browser as the caller), offered on
        loopback or behind the dashboard token, never on an exposed dashboard without one.
        ``max_concurrent_calls`` (else ``PATTER_MAX_CALLS``; unset = no cap): calls this process holds at
        once; ``fleet_max_concurrent_calls`` (else ``PATTER_FLEET_MAX_CALLS``; needs ``redis_url``): calls
        the whole fleet holds. Calls past either, or while the event loop is behind, are refused busy
        (docs/scaling.md)."""
        check_serve_options(port, voicemail_message, recording=recording, dashboard=dashboard, tunnel=tunnel)
        check_softphone_option(softphone)
        limits = AdmissionLimits.resolve(max_concurrent_calls, fleet_max_concurrent_calls)
        quick_tunnel = check_can_serve(self._server, self._carrier, self._fleet, limits, tunnel=tunnel)
        if quick_tunnel:
            _resolve_agent(agent, on_message)  # fail before any tunnel bookkeeping
            self._server.expect_quick_tunnel()
        built = self._adopt(
            build_app(
                self._app_context,
                agent,
                on_call_start=on_call_start,
                on_call_end=on_call_end,
                on_transcript=on_transcript,
                on_message=on_message,
                on_metrics=on_metrics,
                dashboard=dashboard,
                dashboard_token=dashboard_token,
                recording=recording,
                voicemail_message=voicemail_message,
                softphone=softphone,
                admission=limits,
            )
        )
        banner_token = self.dashboard_token if dashboard else None  # None: no dashboard to announce
        await serve_app(self._server, built, port=port, quick_tunnel=quick_tunnel, banner_token=banner_token)

    @property
    def ready(self) -> asyncio.Future[int]:
        """Resolves with the bound port once :meth:`serve` is listening. May be read before ``serve()`` has
        started (``asyncio.create_task(phone.serve(agent)); await phone.ready``); raises what ``serve()``
        raised if it fails before listening."""
        return self._server.ready

    @property
    def tunnel_ready(self) -> asyncio.Future[str]:
        """Resolves with the public host once :meth:`serve`'s quick tunnel is up (at once if known)."""
        return self._server.tunnel_ready

    async def disconnect(self) -> None:
        """Stop serving and the quick tunnel; live calls are ended cleanly first. Idempotent; ``serve()``
        may be called again (a quick tunnel then gets a new host)."""
        await self._server.stop()
        await self.flush_logs()
        await self._server.stop_tunnel()

    def asgi_app(
        self,
        agent: Agent,
        *,
        on_call_start: Callback | None = None,
        on_call_end: Callback | None = None,
        on_transcript: Callback | None = None,
        on_message: Callback | None = None,
        on_metrics: Callback | None = None,
        dashboard: bool = True,
        dashboard_token: str = "",
        allow_insecure_dashboard: bool = False,
        softphone: bool = True,
        max_concurrent_calls: int | None = None,
    ) -> FastAPI:
        """The server as an ASGI app, to run under your own uvicorn or mount into your own FastAPI app.

        ``max_concurrent_calls`` as for :meth:`serve`, per process (each worker counts its own calls).

        Every call is measured (latency, cost) and, when persistence is on, logged to disk; the store
        behind the dashboard is loaded from that log first, so a restarted server shows its history.
        ``softphone``: the dashboard's "Call this agent" button (see :meth:`serve`).
        """
        check_softphone_option(softphone)
        return self._adopt(
            build_app(
                self._app_context,
                agent,
                on_call_start=on_call_start,
                on_call_end=on_call_end,
                on_transcript=on_transcript,
                on_message=on_message,
                on_metrics=on_metrics,
                dashboard=dashboard,
                dashboard_token=dashboard_token,
                allow_insecure_dashboard=allow_insecure_dashboard,
                softphone=softphone,
                admission=per_process(AdmissionLimits.resolve(max_concurrent_calls)),
            )
        ).app

    def _adopt(self, built: BuiltApp) -> BuiltApp:
        """Keep what :func:`~getpatter._app_builder.build_app` made: fleet membership, dashboard token."""
        self._member = built.member
        if built.dashboard_token is not None:
            self.dashboard_token = built.dashboard_token
        return built

    @property
    def metrics_store(self) -> MetricsStore:
        """Calls this Patter has seen (live and finished), as the dashboard shows them."""
        return self._telemetry.store

    def _observers(self, agent: Agent, on_metrics: Callback | None) -> list[Observer]:
        """The observers every call of an app built now gets (metrics, store, events, call log)."""
        return self._telemetry.observers(agent, on_metrics)

    async def flush_logs(self, timeout: float = 10.0) -> None:
        """Wait until every finished call's log is on disk, and (briefly) for the standalone dashboard."""
        await self._telemetry.flush(timeout)

    async def test(
        self,
        agent: Agent,
        on_message: Callback | None = None,
        on_call_start: Callback | None = None,
        on_call_end: Callback | None = None,
        *,
        input: TextIO | None = None,
        output: TextIO | None = None,
    ) -> None:
        """Chat with ``agent`` in the terminal: no carrier, STT or TTS (API.md A.6). Replies come from
        ``on_message`` or the agent's LLM (with its tools); ``/quit``, ``/hangup``, ``/transfer <number>``,
        ``/history``. ``input``/``output`` default to stdin/stdout."""
        from getpatter.testmode import run_test_mode

        await run_test_mode(
            agent,
            on_message,
            on_call_start,
            on_call_end,
            input=input,
            output=output,
            allow_private_webhooks=self._settings.allow_private_webhooks,
        )

    def __repr__(self) -> str:
        # Carrier reprs already omit secrets; nothing else held here is secret.
        return (
            f"Patter(carrier={self._carrier!r}, phone_number={self._phone_number!r}, "
            f"webhook_host={self.webhook_host!r}, tunnel={self._tunnel!r}, log_root={self._log_root!r})"
        )


__all__ = ["CarrierConfig", "Patter"]
