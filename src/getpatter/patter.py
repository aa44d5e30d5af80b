"""``Patter``: the client object. Resolves and validates every constructor option once, up front.

Everything downstream (server, carriers, metrics, call log) reads the resolved values from here, so a
misconfiguration fails at ``Patter(...)`` with a message naming the parameter, not mid-call.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TextIO, overload

from getpatter._compat import check_agent_provider, reject_agent_kwargs, reject_client_kwargs
from getpatter._ready import ReadySignal, settles_ready
from getpatter._serving import (
    Server,
    _resolve_agent,
    _resolve_tunnel,
    _resolve_webhook_host,
    check_serve_options,
    check_softphone_option,
    mount_softphone,
)
from getpatter.agent import Agent, build_agent
from getpatter.call.bus import EventBus
from getpatter.carriers.base import CarrierConfig
from getpatter.dashboard.notify_target import resolve_notify_target
from getpatter.errors import PatterConfigError, PatterTypeError
from getpatter.fleet.join import install as install_fleet
from getpatter.fleet.join import resolve_fleet
from getpatter.metrics.pricing import ProviderPricing, merge_pricing
from getpatter.persist_root import resolve_log_root
from getpatter.server.admission import ENV_FLEET_MAX_CALLS, AdmissionLimits
from getpatter.settings import Settings
from getpatter.tunnels.config import TunnelConfig
from getpatter.validation import validate_e164

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.call.results import CallResult
    from getpatter.call.session import Observer
    from getpatter.dashboard.notify import DashboardNotifier
    from getpatter.dashboard.persistence import CallLogWriter
    from getpatter.dashboard.store import MetricsStore
    from getpatter.fleet.member import FleetMember
    from getpatter.guardrails import Guardrail
    from getpatter.llm.base import LLM
    from getpatter.server.runner import ServerRunner
    from getpatter.server.state import ServerState
    from getpatter.stt.base import STT
    from getpatter.tools.tool import Tool, ToolDecorator
    from getpatter.tts.base import TTS

log = logging.getLogger("getpatter")
Callback = Callable[..., Any]


def _per_process(limits: AdmissionLimits) -> AdmissionLimits:
    """``asgi_app()`` joins no fleet (``serve()`` does): a fleet limit from the environment cannot hold."""
    if limits.fleet_max_calls:
        log.warning(
            "%s applies to serve() only: asgi_app() counts calls per process (max_concurrent_calls)",
            ENV_FLEET_MAX_CALLS,
        )
        return replace(limits, fleet_max_calls=0)
    return limits


def _client_params() -> list[str]:
    """The keyword parameters ``Patter(...)`` takes, read from its signature (never a list to keep up)."""
    skip = {"self", "patter_only"}
    return [name for name in inspect.signature(Patter.__init__).parameters if name not in skip]


class Patter:
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
        reject_client_kwargs(patter_only, _client_params())
        if carrier is not None and not isinstance(carrier, CarrierConfig):
            raise PatterTypeError(
                f"carrier must be Twilio(...) or Telnyx(...), got {type(carrier).__name__}. "
                "Fix: from getpatter import Twilio; Patter(carrier=Twilio(), ...)"
            )
        if not isinstance(phone_number, str):
            raise PatterTypeError(f"phone_number must be a str, got {type(phone_number).__name__}")
        number = phone_number.strip()
        if number:
            validate_e164(number, "phone_number")
        elif carrier is not None:
            raise PatterConfigError(
                f"phone_number is required with a {carrier.kind} carrier: it is the number callers dial and "
                "outbound calls come from. Fix: Patter(carrier=..., phone_number='+15551234567')."
            )
        resolved_tunnel = _resolve_tunnel(tunnel)

        self._carrier: CarrierConfig | None = carrier
        self._phone_number = number
        self._tunnel = resolved_tunnel
        self._pricing: dict[str, ProviderPricing] = merge_pricing(pricing)
        self._log_root = resolve_log_root(persist)
        #: The standalone dashboard every call is posted to (``None`` = off); see dashboard/notify.py.
        self._notify_target = resolve_notify_target(dashboard_notify)
        self._notifier: DashboardNotifier | None = None
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
        self._store: MetricsStore | None = None
        #: The token the dashboard requires ("" = open; generated when the server is exposed).
        self.dashboard_token = ""
        #: Process-wide events (API.md C14): every call's events (transcripts, turns, tools, usage, the
        #: call summary) and the server's (status callbacks, machine detection, recordings). Subscribe by
        #: class or by documented name: ``phone.events.on("transcript_final", handler)``.
        self.events = EventBus()
        self._log_writer: CallLogWriter | None = None
        self._unfeed: Callable[[], None] | None = None  # the outbound feed of the last asgi_app()
        #: The fleet membership of the last app built (``None`` without ``redis_url``).
        self._member: FleetMember | None = None

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
        if limits.fleet_max_calls and self._fleet is None:
            raise PatterConfigError(
                f"fleet_max_concurrent_calls / {ENV_FLEET_MAX_CALLS} counts calls across a fleet, and this "
                "Patter has no redis_url. Fix: Patter(redis_url='redis://...') (or PATTER_REDIS_URL), or "
                "use max_concurrent_calls for a limit of this process alone."
            )
        server = self._server
        quick_tunnel = server.wants_quick_tunnel(tunnel)
        if server.runner is not None:
            raise PatterConfigError("this Patter is already serving; call disconnect() first")
        if self._carrier is None:
            raise PatterConfigError(
                "serve() needs a carrier. Fix: Patter(carrier=Twilio(), phone_number=...)"
            )
        if quick_tunnel:
            _resolve_agent(agent, on_message)  # fail before any tunnel bookkeeping
            server.expect_quick_tunnel()
        app = self._build_app(
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
        state = server.state
        assert state is not None
        banner_token = self.dashboard_token if dashboard else None  # None: no dashboard to announce
        member = self._member
        state.admission.ensure_monitor()
        try:
            async with member.joined() if member is not None else contextlib.nullcontext():
                await server.serve(
                    app, state, port=port, quick_tunnel=quick_tunnel, dashboard_token=banner_token
                )
        finally:
            await state.admission.close()

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
        return self._build_app(
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
            admission=_per_process(AdmissionLimits.resolve(max_concurrent_calls)),
        )

    def _build_app(
        self,
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
    ) -> FastAPI:
        """Build the server state (once, complete) and the app on it; the state becomes ``_state``."""
        from getpatter.call.remote_message import resolve_on_message
        from getpatter.server.app import create_app
        from getpatter.server.build import build_state

        agent = _resolve_agent(agent, on_message)
        on_message = resolve_on_message(on_message, allow_private=self._settings.allow_private_webhooks)
        server = self._server
        if not server.webhook_host and server.tunnel_future is None:  # a quick tunnel sets it once up
            raise PatterConfigError(
                "no public host for carrier webhooks. Fix: Patter(webhook_url='abc.example.com', ...) "
                "or Patter(tunnel=True, ...)"
            )
        state = build_state(
            carrier=self._carrier,
            webhook_host=server.webhook_host,
            agent=agent,
            on_call_start=on_call_start,
            on_call_end=on_call_end,
            on_transcript=on_transcript,
            on_message=on_message,
            observers=self._observers(agent, on_metrics),
            events=self.events,
            recording=recording,
            voicemail_message=voicemail_message,
            settings=self._settings,
            admission=admission,
        )
        server.state = state
        self._feed_outbound()
        app = create_app(state)
        self._member = None
        if self._fleet is not None:
            from getpatter.fleet.member import attach

            self._member = attach(self._fleet, app, state, self.metrics_store)
        if self._log_root is None:
            log.info(
                "call logs are off (getpatter's default; the Patter SDK wrote them by default). "
                "To keep them: Patter(persist=True) or PATTER_LOG_DIR=auto"
            )
        if dashboard:
            from getpatter.dashboard.auth import resolve_dashboard_token
            from getpatter.dashboard.routes import add_dashboard_routes

            quick = "quick-tunnel" if server.tunnel_future is not None else ""
            self.dashboard_token = resolve_dashboard_token(
                dashboard_token,
                bind_host=self._settings.bind_host,
                webhook_host=server.webhook_host or quick,
                allow_insecure=allow_insecure_dashboard,
            )
            add_dashboard_routes(app, self.metrics_store, token=self.dashboard_token)
            if softphone:
                mount_softphone(
                    app,
                    state,
                    self.dashboard_token,
                    bind_host=self._settings.bind_host,
                    webhook_host=server.webhook_host or quick,
                )
        return app

    @property
    def metrics_store(self) -> MetricsStore:
        """Calls this Patter has seen (live and finished), as the dashboard shows them."""
        if self._store is None:
            from getpatter.dashboard.store import MetricsStore

            self._store = MetricsStore(log_root=self._log_root)
        return self._store

    def _observers(self, agent: Agent, on_metrics: Callback | None) -> list[Observer]:
        from getpatter.dashboard.persistence import CallLogWriter, agent_snapshot
        from getpatter.metrics.collector import MetricsCollector

        store = self.metrics_store
        collector = MetricsCollector(
            self._pricing,
            on_metrics=on_metrics,
            provider_mode=agent.provider,
            telephony_provider=self._carrier.kind if self._carrier is not None else "",
        )
        if agent.provider == "openai_realtime":
            collector.warn_if_uncalibrated("openai_realtime", agent.model)
        observers: list[Observer] = [collector.observer, store.store_observer, self._forward_events]
        from getpatter.tracing import is_tracing_enabled, tracing_observer

        if is_tracing_enabled():
            observers.append(tracing_observer)
        if self._notify_target is not None:
            from getpatter.dashboard.notify import DashboardNotifier

            if self._notifier is None:
                on = replace(self._settings, dashboard_notify=True)  # the target already says "on"
                self._notifier = DashboardNotifier(self._notify_target, settings=on)
            observers.append(self._notifier.observer)
        if self._log_root is not None:
            writer = CallLogWriter(self._log_root, self._settings, agent=agent_snapshot(agent))
            if writer.enabled:
                added = store.hydrate(self._log_root)
                if added:
                    log.info("loaded %d past calls from %s", added, self._log_root)
                observers.append(writer.observer)
                self._log_writer = writer
        return observers

    def _feed_outbound(self) -> None:
        """Outbound calls reach the dashboard (and call logs) from the dial on (dashboard/outbound_feed);
        refused calls are counted there."""
        from getpatter.call.progress import CallRefused
        from getpatter.dashboard.outbound_feed import feed_outbound_calls

        if self._unfeed is not None:
            self._unfeed()
        unfeed = feed_outbound_calls(self.events, self.metrics_store, self._log_writer)
        unwatch = self._notifier.watch(self.events) if self._notifier is not None else None
        store = self.metrics_store
        # Calls refused at the door (server at its limit) are counted on the dashboard's overview.
        unrefused = self.events.on(
            CallRefused, lambda ev: store.record_call_refused(ev.call_id, ev.direction, ev.reason)
        )

        def unsubscribe() -> None:
            unfeed()
            unrefused()
            if unwatch is not None:
                unwatch()

        self._unfeed = unsubscribe

    def _forward_events(self, bus: EventBus, ctx: object) -> None:
        """Every call's events also reach ``phone.events``, the process-wide bus (API.md C14)."""
        bus.on(None, self.events.emit)

    async def flush_logs(self, timeout: float = 10.0) -> None:
        """Wait until every finished call's log is on disk, and (briefly) for the standalone dashboard."""
        if self._log_writer is not None:
            await self._log_writer.flush(timeout)
        if self._notifier is not None:  # restarts by itself on the next call
            await self._notifier.aclose(min(timeout, 2.0))

    @overload
    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        wait: Literal[False] = False,
    ) -> str: ...

    @overload
    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        *,
        wait: Literal[True],
    ) -> CallResult: ...

    @overload
    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        wait: bool = False,
    ) -> str | CallResult: ...

    async def call(
        self,
        to: str,
        agent: Agent | None = None,
        first_message: str = "",
        from_number: str = "",
        machine_detection: bool = False,
        on_machine_detection: Callback | None = None,
        on_machine: Callback | None = None,
        voicemail_message: str = "",
        ring_timeout: int | None = 25,
        wait: bool = False,
    ) -> str | CallResult:
        """Place an outbound call (API.md A.5) through the running server; returns the call id, or with
        ``wait=True`` the :class:`CallResult` once the call is over.

        ``agent`` defaults to the served agent; ``first_message`` overrides its greeting for this call.
        ``machine_detection=True`` (or a voicemail message, this call's or ``serve()``'s) turns on
        answering-machine detection: ``on_machine_detection`` (alias ``on_machine``) gets the
        :class:`MachineDetectionResult` once; a machine gets the voicemail message then a hang-up.
        """
        from getpatter.outbound import place_call, validate_call_options

        if self._runner is not None and not self._runner.ready.done():
            await asyncio.wait_for(asyncio.shield(self._runner.ready), 30)
        state = self._state
        if state is None or state.outbound.closed:
            raise PatterConfigError(
                "phone.call() needs the server running, for the carrier's callbacks and media stream. "
                "Fix: asyncio.create_task(phone.serve(agent)); await phone.ready; then phone.call(...) "
                "(or mount phone.asgi_app(agent) in your own server first)."
            )
        options = validate_call_options(
            carrier=state.carrier,
            phone_number=self._phone_number,
            default_voicemail=state.outbound.default_voicemail,
            to=to,
            agent=agent,
            first_message=first_message,
            from_number=from_number,
            machine_detection=machine_detection,
            on_machine_detection=on_machine_detection,
            on_machine=on_machine,
            voicemail_message=voicemail_message,
            ring_timeout=ring_timeout,
            wait=wait,
        )
        if options.agent is not None:
            options = replace(options, agent=_resolve_agent(options.agent, state.runtime.on_message))
        return await place_call(state, options)

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
