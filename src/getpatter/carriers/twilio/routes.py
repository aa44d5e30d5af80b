"""Twilio routes: the voice webhook (answers ``<Connect><Stream>``), status callbacks, the media socket.

Mounted by :meth:`TwilioCarrier.add_routes`; everything server-side goes through ``state`` (the
:class:`~getpatter.carriers.host.CarrierHost`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response

from getpatter.carriers.base import DIALLED_STREAM_SUBJECT
from getpatter.carriers.twilio.call_ids import is_twilio_call_sid
from getpatter.carriers.twilio.carrier import (
    AMD_PATH,
    MAX_WEBHOOK_BYTES,
    OUTBOUND_STREAM_ID,
    RECORDING_PATH,
    STATUS_PATH,
    STREAM_PATH,
    VOICE_PATH,
    classify_answered_by,
    stream_twiml,
)
from getpatter.carriers.twilio.rest import TwilioCallControl
from getpatter.carriers.twilio.signature import verify_signature
from getpatter.carriers.urls import public_url

if TYPE_CHECKING:
    from getpatter.carriers.host import CarrierHost
    from getpatter.carriers.twilio.carrier import TwilioCarrier

log = logging.getLogger("getpatter.server.twilio")


def add_twilio_routes(app: FastAPI, state: CarrierHost, carrier: TwilioCarrier) -> None:
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
            if not verify_signature(carrier.config.auth_token, url, params, signature):
                log.warning("Twilio webhook %s rejected: invalid signature", request.url.path)
                return None
        return dict(params)

    @app.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid = form.get("CallSid", "")
        if not is_twilio_call_sid(call_sid):
            return Response("Missing CallSid", status_code=400)
        if not await state.admit(call_sid, "inbound"):
            return Response(carrier.refusal_twiml(), media_type="text/xml")  # at capacity: busy
        caller = form.get("From") or form.get("Caller", "")
        callee = form.get("To") or form.get("Called", "")
        # The stream token (a <Parameter>, echoed in ``start``) proves the socket is this call's.
        token = state.stream_token(call_sid, "inbound")
        twiml = stream_twiml(state.webhook_host, call_sid, {"caller": caller, "callee": callee}, token)
        return Response(twiml, media_type="text/xml")

    @app.post(STATUS_PATH)
    async def status(request: Request) -> Response:
        """Call progress (twilio.md §1.2): drives outbound call state and ``wait=True`` results."""
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
        if not is_twilio_call_sid(call_sid) or not call_status:
            return Response("Missing CallSid or CallStatus", status_code=400)
        state.outbound.status(
            call_sid,
            carrier.kind,
            call_status,
            direction="inbound" if form.get("Direction") == "inbound" else "outbound",
            sequence=_int(form.get("SequenceNumber")),
            duration_seconds=_number(form.get("CallDuration")),
        )
        return Response(status_code=204)

    @app.post(AMD_PATH)
    async def amd(request: Request) -> Response:
        """Async AMD verdict (twilio.md §1.3), once per call: a machine gets the voicemail message
        (``<Say>`` then ``<Hangup/>``, which also ends the agent's stream) or a hang-up; a fax is hung up
        on; a human (or ``unknown``: maybe a human) keeps the agent, already connected."""
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid, answered_by = form.get("CallSid", ""), form.get("AnsweredBy", "unknown")
        if not is_twilio_call_sid(call_sid):
            return Response("Missing CallSid", status_code=400)
        classification = classify_answered_by(answered_by)
        result = state.outbound.machine_detected(call_sid, carrier.kind, classification, answered_by)
        if result is not None and classification in ("machine", "fax"):
            control = TwilioCallControl(carrier.rest, call_sid)
            message = state.outbound.voicemail_for(call_sid) if classification == "machine" else ""
            if message:
                record = state.outbound.get(call_sid)
                if record is not None:
                    record.voicemail_started = True
                state.outbound.spawn(control.say_and_hangup(message), f"voicemail on call {call_sid}")
            else:
                state.outbound.spawn(control.hangup(), f"hang-up on {classification} of call {call_sid}")
        return Response(status_code=204)

    @app.post(RECORDING_PATH)
    async def recording(request: Request) -> Response:
        """Recording status (twilio.md §1.4): emitted as ``RecordingSaved`` on the server bus."""
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        call_sid = form.get("CallSid", "")
        if not is_twilio_call_sid(call_sid):
            return Response("Missing CallSid", status_code=400)
        recording_id, status = form.get("RecordingSid", ""), form.get("RecordingStatus", "completed")
        url = form.get("RecordingUrl", "")
        log.info("Twilio call %s recording %s %s: %s", call_sid, recording_id, status, url)
        state.recording_saved(
            call_sid,
            carrier.kind,
            url=url,
            recording_id=recording_id,
            status=status,
            duration_seconds=_number(form.get("RecordingDuration")),
            details={k: v for k, v in form.items() if k.startswith("Recording") or k == "ErrorCode"},
        )
        return Response(status_code=204)

    @app.websocket(STREAM_PATH + "/{call_id}")
    async def media(websocket: WebSocket, call_id: str) -> None:
        # Outbound calls all stream to one path; their CallSid arrives in ``start``.
        outbound = call_id == OUTBOUND_STREAM_ID
        if not outbound and not is_twilio_call_sid(call_id):
            log.warning("Twilio media socket refused: %r is not a CallSid", call_id[:40])
            await websocket.close(code=1008)
            return
        await state.run_media(
            websocket,
            carrier.codec(),
            # The outbound path names no call, and its token (in the dial's TwiML, written before the
            # CallSid existed) names the dial subject: ``start`` brings the CallSid.
            call_id="" if outbound else call_id,
            direction="outbound" if outbound else "inbound",
            token_subject=DIALLED_STREAM_SUBJECT if outbound else "",
        )


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
