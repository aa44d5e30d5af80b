"""The media WebSocket, whatever the carrier: cap, accept, verify the stream token, run the call, close
properly. A socket its route authenticated itself (the dashboard's in-page caller) skips the stream
token (:func:`serve_trusted_socket`); every socket that becomes a call then runs through
:func:`_run_admitted`."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from getpatter.call.session import CallSession
from getpatter.carriers.base import MediaCodec, MediaProtocolError, MediaStarted
from getpatter.server.stream_gate import StreamExpectation, admit
from getpatter.server.stream_tokens import StreamTokenError

if TYPE_CHECKING:
    from getpatter.server.admission import Ticket
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
        receive = _receiver(websocket, session.stop_requested)
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
        if capped:
            state.socket_limiter.release(ip)
        authenticated = True
        # The call's admission ticket (reserved when its carrier asked us to answer) lives until it ends.
        ticket = state.admission.attach(started.call_id, expect.direction)
        await _run_admitted(state, websocket, session, receive, started, ticket)
    finally:
        if capped and not authenticated:
            state.socket_limiter.release(ip)


async def serve_trusted_socket(
    state: ServerState,
    websocket: WebSocket,
    codec: MediaCodec,
    make_session: Callable[[], CallSession],
    *,
    start_timeout_s: float = 10.0,
) -> None:
    """Run one call on a socket whose peer its route has already authenticated (no stream token: the
    dashboard's in-page caller presents the dashboard's token on the upgrade).

    The first message must start the stream (``codec.parse`` -> :class:`MediaStarted`, which may set the
    codec's wire format: the session is built after it); anything else, or nothing within
    ``start_timeout_s``, closes the socket with 1008 before any vendor connection. From then on the call
    runs exactly like a carrier's (:func:`_run_admitted`).
    """
    await websocket.accept()
    never = asyncio.Event()  # no session yet: nothing can ask the reader to stop
    try:
        async with asyncio.timeout(start_timeout_s):
            first = await _receiver(websocket, never)()
        started = codec.parse(first) if first is not None else None
    except (TimeoutError, MediaProtocolError) as exc:
        log.info("media socket refused before start: %s", str(exc)[:200] or "no start in time")
        started = None
    if not isinstance(started, MediaStarted):
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code=1008)
        return
    # No carrier asked us to answer this one: it is admitted here, on the same terms as a phone call.
    ticket = await state.admission.try_admit(started.call_id, "inbound")
    if ticket is None:
        if websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close(code=1013, reason="busy")  # 1013: try again later
        return
    ticket = state.admission.attach(started.call_id, "inbound")
    session = make_session()
    await _run_admitted(
        state, websocket, session, _receiver(websocket, session.stop_requested), started, ticket
    )


def _receiver(websocket: WebSocket, stop: asyncio.Event) -> Callable[[], Awaitable[str | bytes | None]]:
    """The socket's next message (``None``: closed, or ``stop`` is set)."""

    async def receive() -> str | bytes | None:
        if stop.is_set():
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

    return receive


async def _run_admitted(
    state: ServerState,
    websocket: WebSocket,
    session: CallSession,
    receive: Callable[[], Awaitable[str | bytes | None]],
    started: MediaStarted,
    ticket: Ticket,
) -> None:
    """An admitted socket, carrier or in-page: register the call, run it, close the socket properly and
    give its admission ``ticket`` back. Every media socket that becomes a call passes here."""
    name = started.call_id
    state.sessions[name] = session  # before any await: a second socket for this call is refused
    try:
        reply = session.codec.started_reply()
        if reply is not None:
            with contextlib.suppress(Exception):
                await websocket.send_text(reply)
        await run_until_ended(session, receive, started)
    finally:
        ticket.release()
        if state.sessions.get(name) is session:
            del state.sessions[name]
        if websocket.client_state == WebSocketState.CONNECTED:
            code = 1001 if session.end_reason == "server_shutdown" else 1000  # 1001: going away
            with contextlib.suppress(Exception):
                await websocket.close(code)


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
