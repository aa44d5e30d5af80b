"""The Twilio :class:`Carrier`: routes, paths, the dial request, recording, number setup, AMD words.

Outbound calls are dialled with everything the rest of the call needs, so no instance has to remember
anything for the call to work: ``Calls.json`` with inline TwiML ``<Connect><Stream
url="wss://{host}/ws/stream/outbound">`` whose ``<Parameter>``s carry caller, callee,
``direction=outbound``, the call's first message and its signed stream token; call-progress callbacks to
``/webhooks/twilio/status``; with answering-machine detection, async AMD (``DetectMessageEnd``: the
verdict comes once a machine's greeting is over, the moment to leave a message) to ``/webhooks/twilio/amd``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from getpatter.carriers.base import (
    DIRECTION_PARAM,
    FIRST_MESSAGE_PARAM,
    MAX_PARAM_CHARS,
    STREAM_TOKEN_PARAM,
    Carrier,
    CarrierControl,
    Classification,
    Dial,
    Dialled,
    MediaCodec,
)
from getpatter.carriers.twilio.config import Twilio
from getpatter.carriers.twilio.rest import TwilioCallControl, TwilioRestClient
from getpatter.carriers.twilio.twiml import connect_stream, reject
from getpatter.carriers.urls import public_url, public_ws_url
from getpatter.errors import PatterConnectionError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.carriers.host import CarrierHost

__all__ = [
    "AMD_PATH",
    "MAX_WEBHOOK_BYTES",
    "OUTBOUND_STREAM_ID",
    "RECORDING_PATH",
    "STATUS_EVENTS",
    "STATUS_PATH",
    "STREAM_PATH",
    "VOICE_PATH",
    "WEBHOOK_PREFIX",
    "TwilioCarrier",
    "classify_answered_by",
]

log = logging.getLogger("getpatter")

#: Webhook routes (API.md B.1) and the media-socket path; every outbound stream uses one id on it.
#: Every webhook route of the carrier starts with this (one body cap for all of them).
WEBHOOK_PREFIX = "/webhooks/twilio/"
VOICE_PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/status"
AMD_PATH = "/webhooks/twilio/amd"
RECORDING_PATH = "/webhooks/twilio/recording"
STREAM_PATH = "/ws/stream"
#: Twilio webhooks are small forms; anything this large is not one.
MAX_WEBHOOK_BYTES = 64 * 1024
OUTBOUND_STREAM_ID = "outbound"
#: Call-progress events an outbound call reports to ``STATUS_PATH``.
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


def classify_answered_by(answered_by: str) -> Classification:
    """Twilio ``AnsweredBy`` (twilio.md §1.3) -> classification. Unknown values count as ``unknown``."""
    value = answered_by.strip().lower()
    if value == "human":
        return "human"
    if value.startswith("machine"):
        return "machine"
    if value == "fax":
        return "fax"
    return "unknown"


def stream_url(webhook_host: str, call_id: str) -> str:
    """The ``<Stream url>`` of a call: inbound calls use their CallSid, outbound ones ``outbound``."""
    return public_ws_url(webhook_host, f"{STREAM_PATH}/{call_id}")


def stream_twiml(webhook_host: str, call_id: str, params: Mapping[str, str], token: str) -> str:
    """``<Connect><Stream>`` for a call, its ``<Parameter>``s carrying ``params`` and the signed stream
    token (Twilio echoes them in ``start.customParameters``, where the media socket checks the token)."""
    return connect_stream(stream_url(webhook_host, call_id), {**params, STREAM_TOKEN_PARAM: token})


class TwilioCarrier(Carrier):
    kind = Twilio.kind
    ring_limits = (1, 600)  # Calls.json ``Timeout``

    def __init__(self, config: Twilio) -> None:
        self.config = config
        self.rest = TwilioRestClient(config.account_sid, config.auth_token, base_url=config.base_url)

    def __repr__(self) -> str:
        return f"TwilioCarrier({self.config!r})"  # the config's repr omits the auth token

    def add_routes(self, app: FastAPI, host: CarrierHost) -> None:
        from getpatter.carriers.twilio.routes import add_twilio_routes

        add_twilio_routes(app, host, self)

    def body_caps(self) -> dict[str, int]:
        return {WEBHOOK_PREFIX: MAX_WEBHOOK_BYTES}

    def progress_paths(self) -> tuple[str, ...]:
        return (STATUS_PATH, AMD_PATH, RECORDING_PATH)

    def progress_call_id(self, path: str, body: bytes) -> str:
        form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=200)
        sid = (form.get("CallSid") or [""])[0]
        return sid if sid.startswith("CA") else ""

    def codec(self, params: Mapping[str, str] | None = None) -> MediaCodec:
        from getpatter.carriers.twilio.media import TwilioMediaCodec

        return TwilioMediaCodec()  # Twilio's parameters arrive in the ``start`` message instead

    def control(self, call_id: str) -> CarrierControl | None:
        return TwilioCallControl(self.rest, call_id) if call_id.startswith("CA") else None

    def refusal_twiml(self) -> str:
        """The voice webhook's answer to a call the server cannot take: ``<Reject reason="busy"/>`` as
        the first verb, so Twilio never answers the call (not billed) and the caller hears busy."""
        return reject("busy")

    async def dial(self, dial: Dial, webhook_host: str) -> Dialled:
        """The TwiML is inline, written before the CallSid exists: its stream carries ``dial.stream_token``
        (minted for the dial subject; the server ties it to the call by its record)."""
        params = {"caller": dial.from_, "callee": dial.to, DIRECTION_PARAM: "outbound"}
        if dial.first_message:
            params[FIRST_MESSAGE_PARAM] = dial.first_message[:MAX_PARAM_CHARS]
        amd = dial.machine_detection
        created = await self.rest.create_call(
            dial.to,
            dial.from_,
            twiml=stream_twiml(webhook_host, OUTBOUND_STREAM_ID, params, dial.stream_token),
            status_callback=public_url(webhook_host, STATUS_PATH),
            status_callback_event=STATUS_EVENTS,
            timeout=dial.ring_timeout,
            machine_detection="DetectMessageEnd" if amd else None,
            async_amd=True if amd else None,
            async_amd_status_callback=public_url(webhook_host, AMD_PATH) if amd else None,
        )
        call_id = created.get("sid")
        if not isinstance(call_id, str) or not call_id:
            raise PatterConnectionError(f"{self.kind} accepted the call but returned no call id")
        return Dialled(call_id, stream_token=dial.stream_token)

    def stream_secret(self) -> str:
        return self.config.auth_token

    async def start_recording(self, call_id: str, webhook_host: str) -> str:
        """Twilio reports the file to ``RECORDING_PATH``."""
        started = await self.rest.start_recording(call_id, public_url(webhook_host, RECORDING_PATH))
        return str(started.get("sid") or "")

    async def configure_number(self, number: str, webhook_host: str) -> None:
        """Best effort: set the number's VoiceUrl to our webhook, and say exactly what changed."""
        voice_url = public_url(webhook_host, VOICE_PATH)
        try:
            changed = await self.rest.configure_number(number, voice_url)
        except Exception as exc:
            log.warning(
                "could not point %s at %s (%s); set its Voice URL by hand in the Twilio console",
                number,
                voice_url,
                exc,
            )
            return
        if changed:
            log.info("Twilio number %s: VoiceUrl set to %s (POST)", number, voice_url)
        else:
            log.warning("%s is not a number of this Twilio account; VoiceUrl not changed", number)

    async def close(self) -> None:
        await self.rest.close()
