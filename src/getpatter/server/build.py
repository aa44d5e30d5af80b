"""Wire one ``serve()``: carrier REST client, per-call runtime, observers -> a ``ServerState``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from getpatter.agent import Agent
from getpatter.call.bus import EventBus
from getpatter.call.callbacks import transcript_observer
from getpatter.call.session import CallRuntime, Observer
from getpatter.carriers.base import CarrierControl
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.telnyx.rest import TelnyxCallControl, TelnyxRestClient, resolve_base_url
from getpatter.carriers.twilio.config import Twilio
from getpatter.carriers.twilio.rest import TwilioCallControl, TwilioRestClient
from getpatter.errors import PatterConfigError
from getpatter.server.app import ServerState
from getpatter.server.stream_gate import StreamGate


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
) -> ServerState:
    all_observers: list[Observer] = list(observers or [])
    if on_transcript is not None:
        all_observers.append(transcript_observer(on_transcript))
    make_control: Callable[[str], CarrierControl | None]
    carrier_fields: dict[str, Any]
    if isinstance(carrier, Twilio):
        twilio = TwilioRestClient(carrier.account_sid, carrier.auth_token, base_url=carrier.base_url)

        def make_control(call_id: str) -> CarrierControl | None:
            return TwilioCallControl(twilio, call_id) if call_id.startswith("CA") else None

        carrier_fields = {
            "twilio_auth_token": carrier.auth_token,
            "twilio": twilio,
            "stream_gate": StreamGate.from_env(carrier.auth_token),
        }
    elif isinstance(carrier, Telnyx):
        telnyx = TelnyxRestClient(carrier.api_key, base_url=resolve_base_url(carrier))

        def make_control(call_id: str) -> CarrierControl | None:
            return TelnyxCallControl(telnyx, call_id) if call_id else None

        carrier_fields = {
            "telnyx": telnyx,
            "telnyx_public_key": carrier.public_key,
            "telnyx_strict_signatures": carrier.strict_signatures,
            "telnyx_stream_codec": carrier.stream_codec,
            "stream_gate": StreamGate.from_env(carrier.api_key),
        }
    else:
        raise PatterConfigError(
            f"serve() needs a carrier; got {type(carrier).__name__}. Fix: Patter(carrier=Twilio(), ...)"
        )
    runtime = CallRuntime(
        agent=agent,
        carrier=carrier.kind,
        make_control=make_control,
        on_call_start=on_call_start,
        on_call_end=on_call_end,
        on_transcript=on_transcript,
        on_message=on_message,
        observers=all_observers,
    )
    if events is not None:
        carrier_fields["events"] = events
    return ServerState(webhook_host=webhook_host, runtime=runtime, **carrier_fields)
