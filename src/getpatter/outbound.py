"""``phone.call()``: validate the options, dial through the carrier, register the call (API.md A.5).

The carrier's dial request (:meth:`Carrier.dial`, in ``carriers/<name>/carrier.py``) asks for everything
the rest of the call needs (media stream, call-progress callbacks, answering-machine detection, the
first message), so no instance has to remember anything for the call to work.

Answering-machine detection is on when ``machine_detection=True`` or a voicemail message applies (the
call's own, else ``serve(voicemail_message=...)``; API.md C4).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from getpatter.agent import Agent, check_can_take_calls
from getpatter.call.progress import CallInitiated
from getpatter.call.results import CallResult
from getpatter.carriers.base import DIALLED_STREAM_SUBJECT, Carrier, Dial, Dialled
from getpatter.errors import AtCapacityError, PatterConfigError, PatterConnectionError
from getpatter.server.admission import OUTBOUND_HOLD_MARGIN_S
from getpatter.server.stream_tokens import DEFAULT_TTL_S, StreamTokens
from getpatter.validation import validate_e164

if TYPE_CHECKING:
    from getpatter.server.state import ServerState

__all__ = [
    "OutboundOptions",
    "place_call",
    "validate_call_options",
]

Callback = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class OutboundOptions:
    """Validated ``phone.call()`` options. ``voicemail_message`` is the effective one (the call's, else
    the server default); ``machine_detection`` is True when AMD will run."""

    to: str
    from_: str
    agent: Agent | None
    first_message: str
    machine_detection: bool
    on_machine_detection: Callback | None
    voicemail_message: str
    ring_timeout: int | None
    wait: bool


def _text(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise PatterConfigError(f"{param} must be a str, got {type(value).__name__}. Fix: pass text or ''.")
    return value.strip()


def validate_call_options(
    *,
    carrier: Carrier,
    phone_number: str,
    default_voicemail: str,
    to: object,
    agent: object,
    first_message: object,
    from_number: object,
    machine_detection: object,
    on_machine_detection: object,
    on_machine: object,
    voicemail_message: object,
    ring_timeout: object,
    wait: object,
) -> OutboundOptions:
    """Check every option up front, so a mistake fails before anything is dialled."""
    if not isinstance(to, str):
        raise PatterConfigError(f"to must be an E.164 number string like '+15551234567', got {type(to)}")
    to_number = validate_e164(to.strip(), "to")
    from_text = _text(from_number, "from_number") or phone_number
    if not from_text:
        raise PatterConfigError(
            "from_number is empty and Patter(phone_number=...) is not set. Fix: pass from_number='+1555...'."
        )
    from_text = validate_e164(from_text, "from_number")
    if agent is not None and not isinstance(agent, Agent):
        raise PatterConfigError(
            f"agent must be the Agent returned by phone.agent(...) or None (the served agent), "
            f"got {type(agent).__name__}"
        )
    if agent is not None:
        check_can_take_calls(agent)  # a text-only (llm=) agent cannot speak on a phone call
    for name, flag in (("machine_detection", machine_detection), ("wait", wait)):
        if not isinstance(flag, bool):
            raise PatterConfigError(f"{name} must be True or False, got {flag!r}")
    if on_machine_detection is not None and on_machine is not None and on_machine_detection is not on_machine:
        raise PatterConfigError(
            "on_machine_detection and on_machine are the same callback (on_machine is its alias): pass one."
        )
    callback = on_machine_detection if on_machine_detection is not None else on_machine
    if callback is not None and not callable(callback):
        raise PatterConfigError(
            "on_machine_detection must be a callable taking a MachineDetectionResult (sync or async), "
            f"got {type(callback).__name__}"
        )
    voicemail = _text(voicemail_message, "voicemail_message") or default_voicemail
    low, high = carrier.ring_limits
    if ring_timeout is not None and (
        isinstance(ring_timeout, bool)
        or not isinstance(ring_timeout, int | float)
        or not low <= ring_timeout <= high
    ):
        raise PatterConfigError(
            f"ring_timeout must be seconds between {low} and {high} for {carrier.kind} (or None for the "
            f"carrier default), got {ring_timeout!r}. Fix: ring_timeout=25."
        )
    return OutboundOptions(
        to=to_number,
        from_=from_text,
        agent=agent,
        first_message=_text(first_message, "first_message"),
        machine_detection=machine_detection is True or bool(voicemail),
        on_machine_detection=callback,
        voicemail_message=voicemail,
        ring_timeout=None if ring_timeout is None else int(ring_timeout),
        wait=wait is True,
    )


async def place_call(state: ServerState, options: OutboundOptions) -> str | CallResult:
    """Dial ``options.to`` and register the call; with ``wait`` return its :class:`CallResult`.

    ``wait`` has no time limit of its own beyond the call's: wrap it in ``asyncio.wait_for`` to bound it.
    """
    host = state.webhook_host
    if not host:
        raise PatterConnectionError(
            "the server has no public host yet (a quick tunnel still starting?). Fix: await phone.ready "
            "before phone.call(...)."
        )
    carrier = state.carrier
    # The call has no id yet: a carrier that names the media stream in the dial request gets a token for
    # the dial subject, valid while the call rings, and the call record keeps its nonce so the socket is
    # tied to this call. (Carriers that start the stream once answered sign it then, with the call id.)
    ring = options.ring_timeout if options.ring_timeout is not None else carrier.ring_limits[1]
    # A call placed past capacity is not dialled at all: the place is reserved before the carrier is asked,
    # under a provisional key until the carrier names the call.
    provisional = f"dial-{secrets.token_hex(8)}"
    ticket = await state.admission.try_admit(provisional, "outbound", hold_s=ring + OUTBOUND_HOLD_MARGIN_S)
    if ticket is None:
        refused = state.admission.last_refusal
        raise AtCapacityError(
            f"phone.call({options.to!r}) was not dialled: this server is at its limit ({refused}). "
            "Fix: retry once calls have ended, place it from another instance, or raise "
            "max_concurrent_calls / fleet_max_concurrent_calls.",
            reason=refused,
        )
    token = state.stream_gate.tokens.mint(DIALLED_STREAM_SUBJECT, "outbound", ttl_s=DEFAULT_TTL_S + ring)
    dial = Dial(
        to=options.to,
        from_=options.from_,
        first_message=options.first_message,
        machine_detection=options.machine_detection,
        ring_timeout=options.ring_timeout,
        stream_token=token,
    )
    try:
        dialled = await carrier.dial(dial, host)
    except BaseException:
        ticket.release()
        raise
    if not isinstance(dialled, Dialled):
        dialled = Dialled(dialled)
    call_id = dialled.call_id
    state.admission.rekey(ticket, call_id)
    record = state.outbound.register(
        call_id,
        carrier.kind,
        to=options.to,
        from_=options.from_,
        agent=options.agent,
        first_message=options.first_message,
        voicemail_message=options.voicemail_message,
        machine_detection=options.machine_detection,
        on_machine_detection=options.on_machine_detection,
    )
    record.stream_nonce = StreamTokens.nonce_of(dialled.stream_token)
    state.events.emit(
        CallInitiated(call_id=call_id, carrier=carrier.kind, to=options.to, from_=options.from_)
    )
    if not options.wait:
        return call_id
    return await record.result
