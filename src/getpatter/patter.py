"""``Patter``: the client object. Resolves and validates every constructor option once, up front.

Everything downstream (server, carriers, metrics, call log) reads the resolved values from here, so a
misconfiguration fails at ``Patter(...)`` with a message naming the parameter, not mid-call.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TextIO, overload

from getpatter._ready import ReadySignal
from getpatter._serving import _resolve_agent, _ServingMixin
from getpatter.agent import Agent, build_agent
from getpatter.call.bus import EventBus
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import PatterConfigError
from getpatter.metrics.pricing import ProviderPricing, merge_pricing
from getpatter.persist_root import resolve_log_root
from getpatter.settings import Settings
from getpatter.tunnels.config import CloudflareTunnel, Ngrok, Static, TunnelConfig
from getpatter.validation import validate_e164, validate_webhook_host

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.call.results import CallResult
    from getpatter.call.session import Observer
    from getpatter.dashboard.persistence import CallLogWriter
    from getpatter.dashboard.store import MetricsStore
    from getpatter.llm.base import LLM
    from getpatter.server.app import ServerState
    from getpatter.server.runner import ServerRunner
    from getpatter.stt.base import STT
    from getpatter.tts.base import TTS
    from getpatter.tunnels.cloudflare import CloudflaredTunnel

log = logging.getLogger("getpatter")
Callback = Callable[..., Any]

CarrierConfig = Twilio | Telnyx


def _resolve_tunnel(tunnel: object) -> TunnelConfig | None:
    if tunnel is None or tunnel is False:
        return None
    if tunnel is True:
        return CloudflareTunnel()
    if isinstance(tunnel, CloudflareTunnel | Static | Ngrok):
        return tunnel
    raise TypeError(
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


class Patter(_ServingMixin):
    """A phone-enabled agent runtime.

    ``carrier`` is ``Twilio(...)`` or ``Telnyx(...)``; with a carrier, ``phone_number`` (E.164) is
    required. ``webhook_url`` is the bare public host carriers call back (or let ``tunnel`` provide
    it). ``pricing`` overrides default prices; ``persist`` turns per-call logs on/off (API.md A.2, C.1).
    """

    def __init__(
        self,
        carrier: CarrierConfig | None = None,
        phone_number: str = "",
        webhook_url: str = "",
        tunnel: TunnelConfig | bool | None = None,
        pricing: Mapping[str, Mapping[str, Any]] | None = None,
        persist: bool | str | os.PathLike[str] | None = None,
    ) -> None:
        if carrier is not None and not isinstance(carrier, Twilio | Telnyx):
            raise TypeError(
                f"carrier must be Twilio(...) or Telnyx(...), got {type(carrier).__name__}. "
                "Fix: from getpatter import Twilio; Patter(carrier=Twilio(), ...)"
            )
        if not isinstance(phone_number, str):
            raise TypeError(f"phone_number must be a str, got {type(phone_number).__name__}")
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
        self._webhook_host = _resolve_webhook_host(webhook_url, resolved_tunnel)
        self._pricing: dict[str, ProviderPricing] = merge_pricing(pricing)
        self._log_root = resolve_log_root(persist)
        self._settings = Settings.from_env()
        self._runner: ServerRunner | None = None
        self._state: ServerState | None = None
        self._tunnel_process: CloudflaredTunnel | None = None
        self._tunnel_ready: asyncio.Future[str] | None = None
        self._ready_signal = ReadySignal()
        self._store: MetricsStore | None = None
        #: The token the dashboard requires ("" = open; generated when the server is exposed).
        self.dashboard_token = ""
        #: Process-wide events (API.md C14): call progress, machine detection, recordings.
        self.events = EventBus()
        self._log_writer: CallLogWriter | None = None

    @property
    def carrier(self) -> CarrierConfig | None:
        return self._carrier

    @property
    def phone_number(self) -> str:
        return self._phone_number

    @property
    def webhook_host(self) -> str:
        """Public ``host[:port]`` for carrier callbacks; ``""`` until known (a quick tunnel not yet up)."""
        return self._webhook_host

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
    ) -> Agent:
        """Describe an agent (API.md A.3). Mode: ``engine`` > any of stt/llm/tts (pipeline) > realtime."""
        return build_agent(
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

    # -- serving -------------------------------------------------------------------------------------
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
    ) -> FastAPI:
        """The server as an ASGI app, to run under your own uvicorn or mount into your own FastAPI app.

        Every call is measured (latency, cost) and, when persistence is on, logged to disk; the store
        behind the dashboard is loaded from that log first, so a restarted server shows its history.
        """
        from getpatter.call.remote_message import resolve_on_message
        from getpatter.server.app import create_app
        from getpatter.server.build import build_state
        from getpatter.server.limits import SocketLimiter

        agent = _resolve_agent(agent, on_message)
        on_message = resolve_on_message(on_message, allow_private=self._settings.allow_private_webhooks)
        if not self._webhook_host and self._tunnel_ready is None:  # a quick tunnel sets it once up
            raise PatterConfigError(
                "no public host for carrier webhooks. Fix: Patter(webhook_url='abc.example.com', ...) "
                "or Patter(tunnel=True, ...)"
            )
        self._state = build_state(
            carrier=self._carrier,
            webhook_host=self._webhook_host,
            agent=agent,
            on_call_start=on_call_start,
            on_call_end=on_call_end,
            on_transcript=on_transcript,
            on_message=on_message,
            observers=self._observers(agent, on_metrics),
            events=self.events,
        )
        self._state.runtime.allow_private_webhooks = self._settings.allow_private_webhooks
        self._state.socket_limiter = SocketLimiter(self._settings.max_sockets_per_ip)
        self._state.runtime.media_timeout_s = self._settings.media_timeout_s
        app = create_app(self._state)
        if dashboard:
            from getpatter.dashboard.auth import resolve_dashboard_token
            from getpatter.dashboard.routes import add_dashboard_routes

            self.dashboard_token = resolve_dashboard_token(
                dashboard_token,
                bind_host=self._settings.bind_host,
                webhook_host=self._webhook_host or ("quick-tunnel" if self._tunnel_ready is not None else ""),
                allow_insecure=allow_insecure_dashboard,
            )
            add_dashboard_routes(app, self.metrics_store, token=self.dashboard_token)
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
        observers: list[Observer] = [collector.observer, store.store_observer]
        from getpatter.tracing import is_tracing_enabled, tracing_observer

        if is_tracing_enabled():
            observers.append(tracing_observer)
        if self._log_root is not None:
            writer = CallLogWriter(self._log_root, self._settings, agent=agent_snapshot(agent))
            if writer.enabled:
                added = store.hydrate(self._log_root)
                if added:
                    log.info("loaded %d past calls from %s", added, self._log_root)
                observers.append(writer.observer)
                self._log_writer = writer
        return observers

    async def flush_logs(self, timeout: float = 10.0) -> None:
        """Wait until every finished call's log is on disk."""
        if self._log_writer is not None:
            await self._log_writer.flush(timeout)

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
            carrier=state.runtime.carrier,
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
        connection_id = self._carrier.connection_id if isinstance(self._carrier, Telnyx) else ""
        return await place_call(state, options, telnyx_connection_id=connection_id)

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

    # -- quick tunnel (cloudflared, API.md A.18) -----------------------------------------------------
    def __repr__(self) -> str:
        # Carrier reprs already omit secrets; nothing else held here is secret.
        return (
            f"Patter(carrier={self._carrier!r}, phone_number={self._phone_number!r}, "
            f"webhook_host={self._webhook_host!r}, tunnel={self._tunnel!r}, log_root={self._log_root!r})"
        )


__all__ = ["CarrierConfig", "Patter"]
