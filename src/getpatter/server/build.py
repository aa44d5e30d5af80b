"""Build one server's state, in one place: carrier, outbound-call book, per-call runtime, observers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from getpatter.call.agent_spec import Agent
from getpatter.call.bus import EventBus
from getpatter.call.callbacks import transcript_observer
from getpatter.call.context import CallContext
from getpatter.call.progress import CallRefused, CallStatusChanged
from getpatter.call.results import TERMINAL_STATUSES
from getpatter.call.session import CallRuntime, Observer
from getpatter.carriers.base import CarrierConfig
from getpatter.errors import PatterConfigError
from getpatter.server.admission import Admission, AdmissionLimits, Direction, RefusalReason
from getpatter.server.calls import OutboundRegistry
from getpatter.server.limits import SocketLimiter
from getpatter.server.state import ServerConfig, ServerState
from getpatter.server.stream_gate import StreamGate
from getpatter.settings import Settings

__all__ = ["build_state"]

log = logging.getLogger("getpatter.outbound")


def build_state(
    *,
    carrier: Any,
    webhook_host: str,
    agent: Agent,
    on_call_start: Callable[..., Any] | None = None,
    on_call_end: Callable[..., Any] | None = None,
    on_transcript: Callable[..., Any] | None = None,
    on_message: Callable[..., Any] | None = None,
    observers: list[Observer] | None = None,
    events: EventBus | None = None,
    recording: bool = False,
    voicemail_message: str = "",
    settings: Settings | None = None,
    admission: AdmissionLimits | None = None,
) -> ServerState:
    """The state of one server for ``carrier`` (a ``Twilio(...)`` / ``Telnyx(...)`` config).

    Media streams are signed with ``PATTER_STREAM_SECRET``, else the carrier's own secret.
    ``settings`` (else the defaults) gives the socket cap, the media watchdog and whether webhook tools
    may reach private addresses; ``events`` is the bus for call-progress events (else a new one);
    ``admission`` the limits new calls are admitted under (else those of the environment).
    """
    if not isinstance(carrier, CarrierConfig):
        raise PatterConfigError(
            f"serve() needs a carrier; got {type(carrier).__name__}. Fix: Patter(carrier=Twilio(), ...)"
        )
    settings = settings if settings is not None else Settings()
    config = ServerConfig(
        carrier=carrier.build_carrier(),
        recording=recording,
        default_voicemail=voicemail_message.strip(),
        max_sockets_per_ip=settings.max_sockets_per_ip,
    )
    bus = events if events is not None else EventBus()
    outbound = OutboundRegistry(bus, config.default_voicemail)
    all_observers: list[Observer] = list(observers or [])
    if on_transcript is not None:
        all_observers.append(transcript_observer(on_transcript))
    all_observers.append(outbound.observe)
    runtime = CallRuntime(
        agent=agent,
        carrier=config.carrier.kind,
        make_control=config.carrier.control,
        on_call_start=on_call_start,
        on_call_end=on_call_end,
        on_transcript=on_transcript,
        on_message=on_message,
        observers=all_observers,
        allow_private_webhooks=settings.allow_private_webhooks,
        media_timeout_s=settings.media_timeout_s,
        call_agent=outbound.agent_for,
    )
    state = ServerState(
        config=config,
        runtime=runtime,
        webhook_host=webhook_host,
        events=bus,
        outbound=outbound,
        socket_limiter=SocketLimiter(config.max_sockets_per_ip),
        stream_gate=StreamGate.from_env(config.carrier.stream_secret()),
        admission=_admission(admission if admission is not None else AdmissionLimits.resolve(), bus, config),
    )
    if config.recording:
        runtime.observers.append(_recording_observer(state))
    return state


def _admission(limits: AdmissionLimits, bus: EventBus, config: ServerConfig) -> Admission:
    """Admission reporting each refusal on the server bus (dashboard, ``phone.events``); a reservation
    whose call the carrier reports over before any media is given back at once."""

    def refused(call_id: str, direction: Direction, reason: RefusalReason) -> None:
        bus.emit(
            CallRefused(call_id=call_id, carrier=config.carrier.kind, direction=direction, reason=reason)
        )

    admission = Admission(limits, on_refused=refused)

    def status(ev: CallStatusChanged) -> None:
        if ev.status in TERMINAL_STATUSES:
            admission.ended(ev.call_id)

    bus.on(CallStatusChanged, status)
    return admission


def _recording_observer(state: ServerState) -> Observer:
    """``serve(recording=True)``: start the carrier's recording of every call as its media starts (the
    call is answered by then, which carriers require). The carrier reports the file later."""

    def observe(bus: EventBus, ctx: CallContext) -> None:
        if ctx.carrier != state.carrier.kind:
            return  # a call that did not come through the carrier (the in-page caller): nothing to record
        coro = state.carrier.start_recording(ctx.call_id, state.webhook_host)
        state.outbound.spawn(_log_recording(coro, ctx), f"start recording of call {ctx.call_id}")

    return observe


async def _log_recording(coro: Coroutine[Any, Any, str], ctx: CallContext) -> None:
    ref = await coro
    log.info("%s call %s: recording started %s", ctx.carrier, ctx.call_id, ref)
