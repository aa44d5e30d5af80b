"""Twilio routes: the voice webhook (answers ``<Connect><Stream>``), status callbacks, the media socket."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response

from getpatter.call.progress import RecordingSaved
from getpatter.call.results import classify_twilio_answered_by
from getpatter.call.session import CallSession
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.carriers.twilio.rest import TwilioCallControl
from getpatter.carriers.twilio.signature import verify_signature
from getpatter.carriers.twilio.twiml import connect_stream
from getpatter.server.media_socket import serve_media_socket
from getpatter.server.outbound import (
    TWILIO_AMD_PATH,
    TWILIO_OUTBOUND_STREAM_ID,
    TWILIO_RECORDING_PATH,
    TWILIO_STATUS_PATH,
)
from getpatter.server.stream_gate import StreamExpectation
from getpatter.server.stream_tokens import TOKEN_PARAM
from getpatter.server.urls import public_url, public_ws_url

if TYPE_CHECKING:
    from getpatter.server.app import ServerState

log = logging.getLogger("getpatter.server.twilio")

MAX_WEBHOOK_BYTES = 64 * 1024


def add_twilio_routes(app: FastAPI, state: ServerState) -> None:
    async def verified_form(request: Request) -> dict[str, str] | None:
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            log.warning("Twilio webhook %s rejected: body too large", request.url.path)
            return None
        try:
            params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            log.warning("Twilio webhook %s rejected: body is not UTF-8 form data", request.url.path)
            return None
        if state.verify_signatures:
            url = public_url(state.webhook_host, request.url.path, request.url.query)
            signature = request.headers.get("x-twilio-signature")
            if not verify_signature(state.twilio_auth_token, url, params, signature):
                log.warning("Twilio webhook %s rejected: invalid signature", request.url.path)
                return None
        return dict(params)

    @app.post("/webhooks/twilio/voice")
    async def voice(request: Request) -> Response:
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid = form.get("CallSid", "")
        if not call_sid.isalnum():
            return Response("Missing CallSid", status_code=400)
        caller = form.get("From") or form.get("Caller", "")
        callee = form.get("To") or form.get("Called", "")
        stream_url = public_ws_url(state.webhook_host, f"/ws/stream/{call_sid}")
        token = state.stream_gate.mint(call_sid, "inbound")
        twiml = connect_stream(stream_url, {"caller": caller, "callee": callee, TOKEN_PARAM: token})
        return Response(twiml, media_type="text/xml")

    @app.post(TWILIO_STATUS_PATH)
    async def status(request: Request) -> Response:
        """Call progress (twilio.md §1.2): drives outbound call state and ``wait=True`` results."""
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
        if not call_sid.isalnum() or not call_status:
            return Response("Missing CallSid or CallStatus", status_code=400)
        state.outbound.status(
            call_sid,
            "twilio",
            call_status,
            direction="inbound" if form.get("Direction") == "inbound" else "outbound",
            sequence=_int(form.get("SequenceNumber")),
            duration_seconds=_number(form.get("CallDuration")),
        )
        return Response(status_code=204)

    @app.post(TWILIO_AMD_PATH)
    async def amd(request: Request) -> Response:
        """Async AMD verdict (twilio.md §1.3), once per call: a machine gets the voicemail message
        (``<Say>`` then ``<Hangup/>``, which also ends the agent's stream) or a hang-up; a fax is hung up
        on; a human (or ``unknown``: maybe a human) keeps the agent, already connected."""
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid, answered_by = form.get("CallSid", ""), form.get("AnsweredBy", "unknown")
        if not call_sid.isalnum():
            return Response("Missing CallSid", status_code=400)
        classification = classify_twilio_answered_by(answered_by)
        result = state.outbound.machine_detected(call_sid, "twilio", classification, answered_by)
        if result is not None and classification in ("machine", "fax") and state.twilio is not None:
            control = TwilioCallControl(state.twilio, call_sid)
            message = state.outbound.voicemail_for(call_sid) if classification == "machine" else ""
            if message:
                record = state.outbound.get(call_sid)
                if record is not None:
                    record.voicemail_started = True
                state.outbound.spawn(control.say_and_hangup(message), f"voicemail on call {call_sid}")
            else:
                state.outbound.spawn(control.hangup(), f"hang-up on {classification} of call {call_sid}")
        return Response(status_code=204)

    @app.post(TWILIO_RECORDING_PATH)
    async def recording(request: Request) -> Response:
        """Recording status (twilio.md §1.4): emitted as ``RecordingSaved`` on the server bus."""
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid = form.get("CallSid", "")
        if not call_sid.isalnum():
            return Response("Missing CallSid", status_code=400)
        event = RecordingSaved(
            call_id=call_sid,
            carrier="twilio",
            url=form.get("RecordingUrl", ""),
            recording_id=form.get("RecordingSid", ""),
            status=form.get("RecordingStatus", "completed"),
            duration_seconds=_number(form.get("RecordingDuration")),
            details={k: v for k, v in form.items() if k.startswith("Recording") or k == "ErrorCode"},
        )
        log.info("Twilio call %s recording %s %s: %s", call_sid, event.recording_id, event.status, event.url)
        state.events.emit(event)
        return Response(status_code=204)

    @app.websocket("/ws/stream/{call_id}")
    async def media(websocket: WebSocket, call_id: str) -> None:
        # Outbound calls all stream to one path; their CallSid arrives in ``start``.
        outbound = call_id == TWILIO_OUTBOUND_STREAM_ID

        def make_session() -> CallSession:
            return CallSession(
                state.runtime,
                TwilioMediaCodec(),
                websocket.send_text,
                call_id_hint=call_id,
                direction="outbound" if outbound else "inbound",
            )

        # Outbound tokens are minted before the CallSid exists: they name the shared path instead.
        expect = (
            StreamExpectation("", "outbound", subject=TWILIO_OUTBOUND_STREAM_ID)
            if outbound
            else StreamExpectation(call_id, "inbound")
        )
        await serve_media_socket(state, websocket, make_session, expect)


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
