"""The checks ``Patter`` runs before it acts: constructor arguments, ``serve()``'s preconditions, and
``call()``'s need for a running server. Each raises a :class:`PatterConfigError` (or
:class:`PatterTypeError`) naming the parameter and the fix, so ``patter.py`` only says what it does.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from getpatter.carriers.base import CarrierConfig
from getpatter.errors import PatterConfigError, PatterTypeError
from getpatter.server.admission import ENV_FLEET_MAX_CALLS, AdmissionLimits
from getpatter.validation import validate_e164

if TYPE_CHECKING:
    from getpatter._serving import Server
    from getpatter.server.state import ServerState


def client_params(init: Callable[..., Any]) -> list[str]:
    """The keyword parameters ``Patter(...)`` takes, read from its signature (never a list to keep up)."""
    skip = {"self", "patter_only"}
    return [name for name in inspect.signature(init).parameters if name not in skip]


def check_client(carrier: object, phone_number: object) -> str:
    """``carrier`` is a carrier config (or ``None``); ``phone_number`` is E.164, required with a carrier.
    Returns the number, stripped."""
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
    return number


def check_can_serve(
    server: Server,
    carrier: CarrierConfig | None,
    fleet: tuple[str, str] | None,
    limits: AdmissionLimits,
    *,
    tunnel: bool,
) -> bool:
    """``serve()`` needs a carrier, no serving already, and a fleet for a fleet limit. Returns whether it
    runs a quick tunnel (``serve(tunnel=True)`` conflicts with a known host)."""
    if limits.fleet_max_calls and fleet is None:
        raise PatterConfigError(
            f"fleet_max_concurrent_calls / {ENV_FLEET_MAX_CALLS} counts calls across a fleet, and this "
            "Patter has no redis_url. Fix: Patter(redis_url='redis://...') (or PATTER_REDIS_URL), or "
            "use max_concurrent_calls for a limit of this process alone."
        )
    quick_tunnel = server.wants_quick_tunnel(tunnel)
    if server.runner is not None:
        raise PatterConfigError("this Patter is already serving; call disconnect() first")
    if carrier is None:
        raise PatterConfigError("serve() needs a carrier. Fix: Patter(carrier=Twilio(), phone_number=...)")
    return quick_tunnel


async def serving_state(server: Server) -> ServerState:
    """The state ``call()`` dials through: an app must be built and its outbound side still open. A
    ``serve()`` still starting is waited for (up to 30 s)."""
    runner = server.runner
    if runner is not None and not runner.ready.done():
        await asyncio.wait_for(asyncio.shield(runner.ready), 30)
    state = server.state
    if state is None or state.outbound.closed:
        raise PatterConfigError(
            "phone.call() needs the server running, for the carrier's callbacks and media stream. "
            "Fix: asyncio.create_task(phone.serve(agent)); await phone.ready; then phone.call(...) "
            "(or mount phone.asgi_app(agent) in your own server first)."
        )
    return state


__all__ = ["check_can_serve", "check_client", "client_params", "serving_state"]
