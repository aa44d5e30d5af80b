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
from typing import TYPE_CHECKING, Any

from getpatter.agent import Agent, build_agent
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

    from getpatter.llm.base import LLM
    from getpatter.server.app import ServerState
    from getpatter.server.runner import ServerRunner
    from getpatter.stt.base import STT
    from getpatter.tts.base import TTS

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


class Patter:
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
    ) -> FastAPI:
        """The server as an ASGI app, to run under your own uvicorn or mount into your own FastAPI app."""
        from getpatter.server.app import create_app
        from getpatter.server.build import build_state

        agent = _resolve_agent(agent, on_message)
        if not self._webhook_host:
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
        )
        return create_app(self._state)

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
        if recording or tunnel:
            raise NotImplementedError(
                "recording=True and serve(tunnel=True) are not available in this build yet"
            )
        if self._runner is not None:
            raise PatterConfigError("this Patter is already serving; call disconnect() first")
        if self._carrier is None:
            raise PatterConfigError(
                "serve() needs a carrier. Fix: Patter(carrier=Twilio(), phone_number=...)"
            )
        app = self.asgi_app(
            agent,
            on_call_start=on_call_start,
            on_call_end=on_call_end,
            on_transcript=on_transcript,
            on_message=on_message,
        )
        assert self._state is not None
        runner = ServerRunner(app, self._state, host=self._settings.bind_host, port=port)
        self._runner = runner
        try:
            serving = asyncio.create_task(runner.run())
            bound = await asyncio.shield(runner.ready)
            log.info("getpatter listening on %s:%d for https://%s", runner.host, bound, self._webhook_host)
            await self._point_number_at_us()
            await serving
        finally:
            self._runner = None
            if self._state is not None and self._state.twilio is not None:
                await self._state.twilio.close()

    @property
    def ready(self) -> asyncio.Future[int]:
        """Resolves with the bound port once :meth:`serve` is listening."""
        if self._runner is None:
            raise PatterConfigError("not serving: call serve() first")
        return self._runner.ready

    async def disconnect(self) -> None:
        """Stop serving: live calls are ended cleanly first. Idempotent; ``serve()`` may be called again."""
        if self._runner is not None:
            await self._runner.stop()

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

    def __repr__(self) -> str:
        # Carrier reprs already omit secrets; nothing else held here is secret.
        return (
            f"Patter(carrier={self._carrier!r}, phone_number={self._phone_number!r}, "
            f"webhook_host={self._webhook_host!r}, tunnel={self._tunnel!r}, log_root={self._log_root!r})"
        )


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


__all__ = ["CarrierConfig", "Patter"]
