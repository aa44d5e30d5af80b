"""Twilio routes: the voice webhook (answers ``<Connect><Stream>``), status callbacks, the media socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketDisconnect, WebSocketState

from getpatter.call.session import CallSession
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.carriers.twilio.signature import verify_signature
from getpatter.carriers.twilio.twiml import connect_stream
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
        twiml = connect_stream(stream_url, {"caller": caller, "callee": callee})
        return Response(twiml, media_type="text/xml")

    @app.post("/webhooks/twilio/status")
    async def status(request: Request) -> Response:
        form = await verified_form(request)
        if form is None:
            return Response("Invalid signature", status_code=403)
        log.info("call %s status %s", form.get("CallSid", "?"), form.get("CallStatus", "?"))
        return Response(status_code=204)

    @app.websocket("/ws/stream/{call_id}")
    async def media(websocket: WebSocket, call_id: str) -> None:
        await websocket.accept()
        session = CallSession(state.runtime, TwilioMediaCodec(), websocket.send_text, call_id_hint=call_id)
        state.sessions[call_id] = session

        async def receive() -> str | bytes | None:
            if session.ended.is_set():
                return None
            try:
                message = await websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return None
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            if text is not None:
                return str(text)  # may be "" (malformed, dropped by the codec), never "closed"
            data = message.get("bytes")
            return bytes(data) if data is not None else b""

        try:
            await run_until_ended(session, receive)
        finally:
            state.sessions.pop(call_id, None)
            if websocket.client_state == WebSocketState.CONNECTED:
                code = 1001 if session.end_reason == "server_shutdown" else 1000  # 1001: going away
                with contextlib.suppress(Exception):
                    await websocket.close(code)


async def run_until_ended(session: CallSession, receive: Callable[[], Awaitable[str | bytes | None]]) -> None:
    """Run the session; also stop reading when the session ends itself (agent hang-up without REST)."""
    runner = asyncio.create_task(session.run(receive))
    ended = asyncio.create_task(session.ended.wait())
    done, _ = await asyncio.wait({runner, ended}, return_when=asyncio.FIRST_COMPLETED)
    if runner not in done:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await session.end("agent_hangup")
    ended.cancel()
