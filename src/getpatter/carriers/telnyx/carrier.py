"""The Telnyx :class:`Carrier`: routes, the dial request, recording, AMD and hang-up vocabularies.

Outbound calls are dialled with ``POST /calls`` (``timeout_secs``, ``answering_machine_detection=
greeting_end`` when wanted, and a ``client_state`` marking the call as ours with its first message);
the media stream is started on ``call.answered`` (``routes.py``), its URL signed for the call id then (the
dial carries no stream, so :meth:`dial` ignores ``Dial.stream_token``). A number routes to its Call
Control application, so :meth:`configure_number` points the application's webhook at us and attaches the
number to it (``number_setup.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from getpatter.carriers.base import (
    STREAM_TOKEN_PARAM,
    Carrier,
    CarrierControl,
    Classification,
    Dial,
    MediaCodec,
)
from getpatter.carriers.telnyx.client_state import client_state_keys, encode_client_state
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.telnyx.rest import (
    TelnyxApiError,
    TelnyxCallControl,
    TelnyxRestClient,
    resolve_base_url,
)
from getpatter.carriers.urls import public_url, public_ws_url
from getpatter.errors import PatterConfigError, PatterConnectionError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.carriers.host import CarrierHost

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "STREAM_PATH",
    "VOICE_PATH",
    "WEBHOOK_PREFIX",
    "TelnyxCarrier",
    "classify_amd",
    "status_for_hangup",
    "stream_url",
]

log = logging.getLogger("getpatter.server")

#: Every webhook route of the carrier starts with this (one body cap for all of them).
WEBHOOK_PREFIX = "/webhooks/telnyx/"
VOICE_PATH = "/webhooks/telnyx/voice"
STREAM_PATH = "/ws/telnyx/stream"
#: Call Control payloads carry SIP headers and more; anything this large is not a webhook.
MAX_WEBHOOK_BYTES = 256 * 1024

_AMD: dict[str, Classification] = {
    # call.machine.detection.ended
    "human": "human",
    "machine": "machine",
    "not_sure": "unknown",
    # call.machine.premium.detection.ended
    "human_residence": "human",
    "human_business": "human",
    "silence": "unknown",
    "fax_detected": "fax",
}


def classify_amd(result: str) -> Classification:
    """Telnyx ``call.machine[.premium].detection.ended`` ``result`` -> classification (telnyx.md §3)."""
    return _AMD.get(result.strip().lower(), "unknown")


_HANGUP: dict[str, str] = {
    "timeout": "no-answer",
    "no_answer": "no-answer",
    "user_busy": "busy",
    # A callee who declines is reported as busy by carriers (SIP 486/603); the caller cannot tell apart.
    "call_rejected": "busy",
    "originator_cancel": "canceled",
    "not_found": "failed",
    "unspecified": "failed",
}


def status_for_hangup(hangup_cause: str, *, answered: bool) -> str:
    """Telnyx ``call.hangup`` ``hangup_cause`` -> a Twilio-style terminal status.

    An answered call that ends for any reason has ``completed``; an unanswered one is classified by its
    cause, and a "normal" clearing before anyone answered counts as ``failed``.
    """
    if answered:
        return "completed"
    return _HANGUP.get(hangup_cause.strip().lower(), "failed")


def stream_url(webhook_host: str, call_control_id: str, query: Mapping[str, str], token: str) -> str:
    """The media-stream URL of a call; ``query`` carries what the stream needs (parties, direction), and
    ``token`` is its signed stream token (Telnyx echoes nothing back: the socket reads it from its URL)."""
    path = f"{STREAM_PATH}/{quote(call_control_id, safe='')}"
    return f"{public_ws_url(webhook_host, path)}?{urlencode({**query, STREAM_TOKEN_PARAM: token})}"


class TelnyxCarrier(Carrier):
    kind = Telnyx.kind
    ring_limits = (5, 600)  # ``timeout_secs``

    def __init__(self, config: Telnyx) -> None:
        self.config = config
        #: ``Telnyx(allow_unsigned_webhooks=True)`` and no public key: webhooks accepted unverified.
        self.allow_unsigned = _check_unsigned_webhooks(config)
        #: HMAC keys of the ``client_state`` marker on the calls this server places (``client_state.py``):
        #: the first signs, every one verifies.
        self.state_keys = client_state_keys(config.api_key)
        self.rest = TelnyxRestClient(config.api_key, base_url=resolve_base_url(config))

    def __repr__(self) -> str:
        return f"TelnyxCarrier({self.config!r})"  # the config's repr omits the API key

    def add_routes(self, app: FastAPI, host: CarrierHost) -> None:
        # Imported here: the routes pull in Ed25519 (cryptography, ~7 MB), only for Telnyx servers.
        from getpatter.carriers.telnyx.routes import add_telnyx_routes

        add_telnyx_routes(app, host, self)

    def body_caps(self) -> dict[str, int]:
        return {WEBHOOK_PREFIX: MAX_WEBHOOK_BYTES}

    def progress_paths(self) -> tuple[str, ...]:
        return (VOICE_PATH,)  # every call event comes to one path

    def progress_call_id(self, path: str, body: bytes) -> str:
        try:
            data = json.loads(body).get("data") or {}
            ccid = (data.get("payload") or {}).get("call_control_id")
        except (ValueError, AttributeError):
            return ""
        return ccid if isinstance(ccid, str) else ""

    def codec(self, params: Mapping[str, str] | None = None) -> MediaCodec:
        from getpatter.carriers.telnyx.media import TelnyxMediaCodec

        return TelnyxMediaCodec(self.config.stream_codec, params=params)

    def control(self, call_id: str) -> CarrierControl | None:
        return TelnyxCallControl(self.rest, call_id) if call_id else None

    async def refuse(self, call_control_id: str) -> None:
        """Turn away an inbound call the server cannot take, before it is answered: ``reject`` with
        ``USER_BUSY`` (the caller hears busy, SIP 486). A call already gone is no error."""
        try:
            await self.rest.reject(call_control_id, cause="USER_BUSY")
        except TelnyxApiError as exc:
            if not exc.call_gone:
                raise

    async def dial(self, dial: Dial, webhook_host: str) -> str:
        dialled = await self.rest.dial(
            dial.to,
            dial.from_,
            connection_id=self.config.connection_id,
            timeout_secs=dial.ring_timeout,
            answering_machine_detection="greeting_end" if dial.machine_detection else None,
            client_state=encode_client_state(dial.first_message, self.state_keys[0]),
        )
        call_id = dialled.get("call_control_id")
        if not isinstance(call_id, str) or not call_id:
            raise PatterConnectionError(f"{self.kind} accepted the call but returned no call id")
        return call_id

    def stream_secret(self) -> str:
        return self.config.api_key

    async def start_recording(self, call_id: str, webhook_host: str) -> str:
        """Telnyx reports the file as ``call.recording.saved`` on the voice webhook."""
        started = await self.rest.record_start(call_id, format="wav", channels="single")
        return str(started.get("recording_id") or "")

    async def configure_number(self, number: str, webhook_host: str) -> None:
        """Best effort: point the Call Control application's webhook at us and attach ``number`` to it."""
        from getpatter.carriers.telnyx.number_setup import point_number_at

        await point_number_at(
            self.rest, number, self.config.connection_id, public_url(webhook_host, VOICE_PATH)
        )

    async def close(self) -> None:
        await self.rest.close()


def _check_unsigned_webhooks(config: Telnyx) -> bool:
    """Refuse to serve Telnyx without webhook verification unless explicitly allowed (and then warn, at
    every start): unsigned webhooks let anyone make this server answer, stream and hang up calls."""
    if config.public_key:
        return False
    if not config.allow_unsigned_webhooks:
        raise PatterConfigError(
            "Telnyx webhooks cannot be verified: no public_key is set. Fix: pass "
            "Telnyx(public_key='<base64 Ed25519 key>') or set TELNYX_PUBLIC_KEY (Mission Control > Keys & "
            "Credentials); for local development only, Telnyx(allow_unsigned_webhooks=True)."
        )
    log.warning(
        "Telnyx webhooks are accepted WITHOUT signature verification (allow_unsigned_webhooks=True): "
        "anyone who can reach this server can drive its calls. Development only; set TELNYX_PUBLIC_KEY."
    )
    return True
