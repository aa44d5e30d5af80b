"""Telnyx routes: the Call Control webhook (answers with a media stream) and the media socket.

The webhook acknowledges at once and sends the ``answer`` command in the background: Telnyx expects a
fast 2xx and retries slow deliveries, and the command is a separate REST request anyway. Deliveries are
deduplicated on ``data.id`` because Telnyx retries them. Mounted by :meth:`TelnyxCarrier.add_routes`;
everything server-side goes through ``state`` (the :class:`CarrierHost`).
"""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response

from getpatter._tasks import BackgroundTasks
from getpatter.carriers.base import (
    DIRECTION_PARAM,
    FIRST_MESSAGE_PARAM,
    MAX_PARAM_CHARS,
    STREAM_TOKEN_PARAM,
)
from getpatter.carriers.telnyx.call_ids import is_telnyx_call_control_id
from getpatter.carriers.telnyx.carrier import (
    MAX_WEBHOOK_BYTES,
    STREAM_PATH,
    VOICE_PATH,
    classify_amd,
    status_for_hangup,
    stream_url,
)
from getpatter.carriers.telnyx.client_state import decode_client_state
from getpatter.carriers.telnyx.rest import TelnyxCallControl, TelnyxRestClient
from getpatter.carriers.telnyx.signature import verify_webhook

if TYPE_CHECKING:
    from getpatter.carriers.host import CarrierHost
    from getpatter.carriers.telnyx.carrier import TelnyxCarrier

log = logging.getLogger("getpatter.server.telnyx")

#: How many recent ``data.id`` values are remembered for deduplication.
SEEN_EVENTS = 4096
_MAX_PARTY_CHARS = 256


def _party(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    return value[:_MAX_PARTY_CHARS] if isinstance(value, str) else ""


def add_telnyx_routes(app: FastAPI, state: CarrierHost, carrier: TelnyxCarrier) -> None:
    seen: collections.OrderedDict[str, None] = collections.OrderedDict()
    background = BackgroundTasks(log)

    def authentic(request: Request, body: bytes) -> bool:
        if not state.verify_signatures:
            return True
        if carrier.config.public_key:
            return verify_webhook(carrier.config.public_key, request.headers, body)
        # No key: only with allow_unsigned_webhooks=True (warned at every start by the carrier).
        return carrier.allow_unsigned and not carrier.config.strict_signatures

    def first_delivery(event_id: object) -> bool:
        if not isinstance(event_id, str) or not event_id:
            return True
        if event_id in seen:
            return False
        seen[event_id] = None
        if len(seen) > SEEN_EVENTS:
            seen.popitem(last=False)
        return True

    def in_background(coro: Any, what: str) -> None:
        background.spawn(coro, f"Telnyx {what}")

    async def on_initiated(payload: dict[str, Any], call_control_id: str) -> None:
        if payload.get("direction") != "incoming":
            log.info("Telnyx call %s initiated (%s)", call_control_id, payload.get("direction"))
            return
        if not await state.admit(call_control_id, "inbound"):  # at capacity: busy, never answered
            in_background(carrier.refuse(call_control_id), f"refusal of call {call_control_id}")
            return
        query = {"caller": _party(payload, "from"), "callee": _party(payload, "to")}
        token = state.stream_token(call_control_id, "inbound")
        answer = carrier.rest.answer(
            call_control_id,
            stream_url=stream_url(state.webhook_host, call_control_id, query, token),
            stream_codec=carrier.config.stream_codec,
        )
        in_background(answer, f"answer of call {call_control_id}")

    @app.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            return Response("Webhook too large", status_code=413)
        if not authentic(request, body):
            log.warning("Telnyx webhook rejected: invalid or missing signature")
            return Response("Invalid signature", status_code=403)
        try:
            envelope = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Response("Body is not JSON", status_code=400)
        data = envelope.get("data") if isinstance(envelope, dict) else None
        event_type = data.get("event_type") if isinstance(data, dict) else None
        payload = data.get("payload") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(event_type, str) or not isinstance(payload, dict):
            return Response("Expected {data: {event_type, payload}}", status_code=400)
        call_control_id = payload.get("call_control_id")
        if event_type.startswith(("call.", "streaming.")) and (
            not is_telnyx_call_control_id(call_control_id)
        ):
            return Response("Missing or invalid call_control_id", status_code=400)
        if not first_delivery(data.get("id")):
            return Response(status_code=200)
        ccid = str(call_control_id)
        _call_progress(state, carrier, event_type, payload, ccid, in_background)
        if event_type == "call.initiated":
            await on_initiated(payload, ccid)
        elif event_type == "call.hangup":
            log.info(
                "Telnyx call %s hung up: %s (source %s)",
                ccid,
                payload.get("hangup_cause", "?"),
                payload.get("hangup_source", "?"),
            )
        elif event_type == "call.dtmf.received":
            # The media socket's dtmf frame feeds the conversation; this is the audit trail only.
            log.info("Telnyx call %s DTMF %r", ccid, str(payload.get("digit", "?"))[:4])
        elif event_type == "streaming.failed":
            log.warning("Telnyx stream of call %s failed: %s", ccid, payload.get("failure_reason", "?"))
        else:
            log.debug("Telnyx event %s for call %s", event_type, ccid)
        return Response(status_code=200)

    @app.websocket(STREAM_PATH + "/{call_id:path}")
    async def media(websocket: WebSocket, call_id: str) -> None:
        if not is_telnyx_call_control_id(call_id):
            log.warning("Telnyx media socket refused: malformed call id %r", call_id[:40])
            await websocket.close(code=1008)
            return
        params = {
            key: value[:_MAX_PARTY_CHARS]
            for key in ("caller", "callee", DIRECTION_PARAM, FIRST_MESSAGE_PARAM)
            if (value := websocket.query_params.get(key))
        }
        outbound = params.get(DIRECTION_PARAM) == "outbound"
        await state.run_media(
            websocket,
            carrier.codec(params),
            call_id=call_id,
            direction="outbound" if outbound else "inbound",
            url_token=websocket.query_params.get(STREAM_TOKEN_PARAM, ""),  # Telnyx echoes no parameters
        )


_AMD_DETECTION = ("call.machine.detection.ended", "call.machine.premium.detection.ended")
_AMD_GREETING = ("call.machine.greeting.ended", "call.machine.premium.greeting.ended")
#: Telnyx ``speak`` voice for voicemail messages (Amazon Polly, US English).
VOICEMAIL_VOICE = "Polly.Joanna"


def _call_progress(
    state: CarrierHost,
    carrier: TelnyxCarrier,
    event_type: str,
    payload: dict[str, Any],
    ccid: str,
    run: Callable[[Coroutine[Any, Any, Any], str], None],
) -> None:
    """Outbound call progress and recordings (telnyx.md §3): status, media on answer, AMD, voicemail.

    A call is ours when this instance placed it or its ``client_state`` carries our mark. On a machine,
    a voicemail message waits for the end of the greeting (``greeting_end`` AMD), then the agent's stream
    is stopped, the message spoken with Telnyx ``speak`` and the call hung up once ``call.speak.ended``
    arrives; without a message (or on a fax) the call is hung up at once.
    """
    if event_type == "call.recording.saved":
        _recording_saved(state, carrier, payload, ccid)
        return
    registry = state.outbound
    record = registry.get(ccid)
    mark = decode_client_state(payload.get("client_state"), carrier.state_keys)
    if (record is None or not record.placed) and mark is None:
        return
    client = carrier.rest
    if event_type == "call.initiated":
        registry.status(ccid, carrier.kind, "initiated", raw=event_type)
    elif event_type == "call.answered":
        registry.status(ccid, carrier.kind, "in-progress", raw=event_type)
        first = (
            record.first_message
            if record is not None and record.placed
            else (mark or {}).get(FIRST_MESSAGE_PARAM, "")
        )
        query = {
            "caller": _party(payload, "from"),
            "callee": _party(payload, "to"),
            DIRECTION_PARAM: "outbound",
        }
        if first:
            query[FIRST_MESSAGE_PARAM] = first[:MAX_PARAM_CHARS]
        token = state.stream_token(ccid, "outbound")
        url = stream_url(state.webhook_host, ccid, query, token)
        start = client.streaming_start(ccid, stream_url=url, stream_codec=carrier.config.stream_codec)
        run(start, f"streaming_start of call {ccid}")
    elif event_type == "call.hangup":
        cause = str(payload.get("hangup_cause") or "unspecified")
        answered = record is not None and record.answered
        registry.status(ccid, carrier.kind, status_for_hangup(cause, answered=answered), raw=cause)
    elif event_type in _AMD_DETECTION:
        raw = str(payload.get("result") or "not_sure")
        classification = classify_amd(raw)
        verdict = registry.machine_detected(ccid, carrier.kind, classification, raw)
        if verdict is not None and (
            classification == "fax" or (classification == "machine" and not registry.voicemail_for(ccid))
        ):
            run(TelnyxCallControl(client, ccid).hangup(), f"hang-up on {classification} of call {ccid}")
    elif event_type in _AMD_GREETING:
        registry.machine_detected(ccid, carrier.kind, "machine", f"greeting_{payload.get('result', 'ended')}")
        record = registry.get(ccid)
        if record is None or record.machine is None or record.machine.classification != "machine":
            return
        message = registry.voicemail_for(ccid)
        if message and not record.voicemail_started:
            record.voicemail_started = True
            run(_leave_voicemail(client, ccid, message), f"voicemail on call {ccid}")
        elif not message:
            run(TelnyxCallControl(client, ccid).hangup(), f"hang-up on machine of call {ccid}")
    elif event_type == "call.speak.ended" and record is not None and record.voicemail_started:
        run(TelnyxCallControl(client, ccid).hangup(), f"hang-up after voicemail on call {ccid}")


async def _leave_voicemail(client: TelnyxRestClient, ccid: str, message: str) -> None:
    """Stop the agent's stream (best effort), then speak ``message``; ``call.speak.ended`` hangs up."""
    with contextlib.suppress(Exception):
        await client.streaming_stop(ccid)
    await client.speak(ccid, message, voice=VOICEMAIL_VOICE)


def _recording_saved(state: CarrierHost, carrier: TelnyxCarrier, payload: dict[str, Any], ccid: str) -> None:
    urls = payload.get("recording_urls") or payload.get("public_recording_urls") or {}
    url = str(urls.get("wav") or urls.get("mp3") or "") if isinstance(urls, dict) else ""
    keys = (
        "recording_urls",
        "public_recording_urls",
        "recording_started_at",
        "recording_ended_at",
        "channels",
    )
    log.info("Telnyx call %s recording saved: %s", ccid, url)
    state.recording_saved(
        ccid,
        carrier.kind,
        url=url,
        recording_id=str(payload.get("recording_id") or ""),
        duration_seconds=_seconds_between(
            payload.get("recording_started_at"), payload.get("recording_ended_at")
        ),
        details={k: payload[k] for k in keys if k in payload},
    )


def _seconds_between(start: object, end: object) -> float | None:
    try:
        begin = datetime.fromisoformat(str(start))
        finish = datetime.fromisoformat(str(end))
        return round((finish - begin).total_seconds(), 3)
    except (TypeError, ValueError):
        return None
