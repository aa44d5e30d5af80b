"""``phone.call()``: validate the options, dial through the carrier, register the call (API.md A.5).

The dial request asks the carrier for everything the rest of the call needs, so no instance has to
remember anything for the call to work:

* **Twilio**: ``Calls.json`` with inline TwiML ``<Connect><Stream url="wss://{host}/ws/stream/outbound">``
  whose ``<Parameter>``s carry caller, callee, ``direction=outbound`` and the call's first message;
  call-progress callbacks (initiated, ringing, answered, completed) to ``/webhooks/twilio/status``; with
  answering-machine detection, async AMD (``DetectMessageEnd``: the verdict comes once a machine's
  greeting is over, the moment to leave a message) to ``/webhooks/twilio/amd``.
* **Telnyx**: ``POST /calls`` with ``timeout_secs``, ``answering_machine_detection=greeting_end`` when
  wanted, and a base64 ``client_state`` marking the call as ours (with its first message); the media
  stream is started on ``call.answered`` (see ``server/telnyx_routes.py``).

Answering-machine detection is on when ``machine_detection=True`` or a voicemail message applies (the
call's own, else ``serve(voicemail_message=...)``; API.md C4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from getpatter.agent import Agent
from getpatter.call.results import CallResult
from getpatter.carriers.twilio.twiml import connect_stream
from getpatter.errors import PatterConfigError, PatterConnectionError
from getpatter.server.outbound import (
    DIRECTION_PARAM,
    FIRST_MESSAGE_PARAM,
    MAX_PARAM_CHARS,
    TWILIO_AMD_PATH,
    TWILIO_OUTBOUND_STREAM_ID,
    TWILIO_STATUS_PATH,
    encode_client_state,
)
from getpatter.server.stream_tokens import DEFAULT_TTL_S, TOKEN_PARAM, StreamTokens
from getpatter.server.urls import public_url, public_ws_url
from getpatter.validation import validate_e164

if TYPE_CHECKING:
    from getpatter.server.app import ServerState

__all__ = [
    "STATUS_EVENTS",
    "OutboundOptions",
    "place_call",
    "validate_call_options",
]

STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Ring-time limits in seconds: Twilio ``Timeout`` 1-600, Telnyx ``timeout_secs`` 5-600.
RING_LIMITS = {"twilio": (1, 600), "telnyx": (5, 600)}

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
    carrier: str,
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
    low, high = RING_LIMITS.get(carrier, (1, 600))
    if ring_timeout is not None and (
        isinstance(ring_timeout, bool)
        or not isinstance(ring_timeout, int | float)
        or not low <= ring_timeout <= high
    ):
        raise PatterConfigError(
            f"ring_timeout must be seconds between {low} and {high} for {carrier} (or None for the "
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


async def place_call(
    state: ServerState, options: OutboundOptions, *, telnyx_connection_id: str = ""
) -> str | CallResult:
    """Dial ``options.to`` and register the call; with ``wait`` return its :class:`CallResult`.

    ``wait`` has no time limit of its own beyond the call's: wrap it in ``asyncio.wait_for`` to bound it.
    """
    host = state.webhook_host
    if not host:
        raise PatterConnectionError(
            "the server has no public host yet (a quick tunnel still starting?). Fix: await phone.ready "
            "before phone.call(...)."
        )
    carrier = state.runtime.carrier
    if carrier == "twilio" and state.twilio is not None:
        params = {"caller": options.from_, "callee": options.to, DIRECTION_PARAM: "outbound"}
        if options.first_message:
            params[FIRST_MESSAGE_PARAM] = options.first_message[:MAX_PARAM_CHARS]
        # The CallSid does not exist yet: the token names the shared outbound path, and the call record
        # keeps its nonce so the socket is tied to this call. It must outlive the ringing.
        ring = options.ring_timeout if options.ring_timeout is not None else 600
        tokens = state.stream_gate.tokens  # not gate.mint: the shared path names no call to expect
        token = tokens.mint(TWILIO_OUTBOUND_STREAM_ID, "outbound", ttl_s=DEFAULT_TTL_S + ring)
        params[TOKEN_PARAM] = token
        amd = options.machine_detection
        created = await state.twilio.create_call(
            options.to,
            options.from_,
            twiml=connect_stream(public_ws_url(host, f"/ws/stream/{TWILIO_OUTBOUND_STREAM_ID}"), params),
            status_callback=public_url(host, TWILIO_STATUS_PATH),
            status_callback_event=STATUS_EVENTS,
            timeout=options.ring_timeout,
            machine_detection="DetectMessageEnd" if amd else None,
            async_amd=True if amd else None,
            async_amd_status_callback=public_url(host, TWILIO_AMD_PATH) if amd else None,
        )
        call_id = created.get("sid")
        stream_nonce = StreamTokens.nonce_of(token)
    elif carrier == "telnyx" and state.telnyx is not None:
        dialled = await state.telnyx.dial(
            options.to,
            options.from_,
            connection_id=telnyx_connection_id,
            timeout_secs=options.ring_timeout,
            answering_machine_detection="greeting_end" if options.machine_detection else None,
            client_state=encode_client_state(options.first_message),
        )
        call_id = dialled.get("call_control_id")
        stream_nonce = ""  # Telnyx streams start on call.answered, with a token naming the call id
    else:
        raise PatterConfigError("phone.call() needs a Twilio or Telnyx carrier on Patter(carrier=...)")
    if not isinstance(call_id, str) or not call_id:
        raise PatterConnectionError(f"{carrier} accepted the call but returned no call id")
    record = state.outbound.register(
        call_id,
        carrier,
        to=options.to,
        from_=options.from_,
        agent=options.agent,
        first_message=options.first_message,
        voicemail_message=options.voicemail_message,
        machine_detection=options.machine_detection,
        on_machine_detection=options.on_machine_detection,
    )
    record.stream_nonce = stream_nonce
    if not options.wait:
        return call_id
    return await record.result
