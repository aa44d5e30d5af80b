"""The carrier media WebSocket, whatever the carrier: cap, accept, verify the stream token, run the call,
close properly."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from getpatter.call.session import CallSession
from getpatter.carriers.base import MediaStarted
from getpatter.server.stream_gate import StreamExpectation, admit
from getpatter.server.stream_tokens import StreamTokenError

if TYPE_CHECKING:
    from getpatter.server.state import ServerState

log = logging.getLogger("getpatter.server")

#: Behind a reverse proxy, load balancer or tunnel every carrier socket arrives from the same address.
_SHARED_ADDRESS_HINT = (
    " (a proxy, load balancer or tunnel in front of this server? every socket then shares its address:"
    " raise PATTER_MAX_SOCKETS_PER_IP, 0 = no cap)"
)


def _is_local_or_private(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.is_loopback or address.is_private


async def serve_media_socket(
    state: ServerState,
    websocket: WebSocket,
    make_session: Callable[[], CallSession],
    expect: StreamExpectation,
) -> None:
    """Run one call on ``websocket``.

    Until its ``start`` carries a valid stream token the socket is unauthenticated: it counts against the
    per-IP cap (refused with 403 before accept past it) and is closed with 1008 if the token is missing,
    forged, expired, replayed or for another call. Authenticated sockets are not capped per IP (the
    process's admission limit decides). No vendor connection is opened before the token is verified.
    """
    gate = state.stream_gate
    peer = websocket.client.host if websocket.client is not None else ""
    ip = gate.proxies.client_ip(peer, websocket.headers.getlist("x-forwarded-for"))
    # A socket for a call we just answered is not held to the cap; anything else is, until verified.
    capped = not (expect.path_call_id and gate.expected(expect.path_call_id))
    if capped and not state.socket_limiter.acquire(ip):
        hint = _SHARED_ADDRESS_HINT if _is_local_or_private(ip) else ""
        gate.refusals.note(ip, "%d unauthenticated sockets already open%s", state.socket_limiter.per_ip, hint)
        await websocket.close(code=1008)
        return
    authenticated = False
    try:
        await websocket.accept()
        session = make_session()

        async def receive() -> str | bytes | None:
            if session.stop_requested.is_set():
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
            started = await admit(
                gate,
                session.codec,
                receive,
                expect,
                live=state.sessions,
                dialled_nonce=state.outbound.stream_nonce,
            )
        except StreamTokenError as exc:
            gate.refusals.note(ip, "%s", exc)
            if websocket.client_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await websocket.close(code=1008)
            return
        name = started.call_id
        state.sessions[name] = session  # before any await: a second socket for this call is refused
        # The call's admission ticket (reserved when its carrier asked us to answer) lives until it ends.
        ticket = state.admission.attach(name, expect.direction)
        if capped:
            state.socket_limiter.release(ip)
        authenticated = True
        try:
            await run_until_ended(session, receive, started)
        finally:
            ticket.release()
            if state.sessions.get(name) is session:
                del state.sessions[name]
            if websocket.client_state == WebSocketState.CONNECTED:
                code = 1001 if session.end_reason == "server_shutdown" else 1000  # 1001: going away
                with contextlib.suppress(Exception):
                    await websocket.close(code)
    finally:
        if capped and not authenticated:
            state.socket_limiter.release(ip)


async def run_until_ended(
    session: CallSession,
    receive: Callable[[], Awaitable[str | bytes | None]],
    started: MediaStarted | None = None,
) -> None:
    """Run the session until the carrier ends it, or the session ends itself (agent hang-up without REST,
    server shutdown): then the call is ended completely before the reader is stopped. ``started``: the
    ``start`` already read (and verified) by the server."""
    runner = asyncio.create_task(session.run(receive, started))
    stop = asyncio.create_task(session.stop_requested.wait())
    done, _ = await asyncio.wait({runner, stop}, return_when=asyncio.FIRST_COMPLETED)
    if runner not in done:
        await session.end_as_requested()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    stop.cancel()
