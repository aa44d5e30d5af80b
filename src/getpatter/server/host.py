"""The server as a carrier's routes see it (:class:`getpatter.carriers.host.CarrierHost`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from starlette.websockets import WebSocket

from getpatter.call.progress import RecordingSaved
from getpatter.call.session import CallSession
from getpatter.carriers.base import MediaCodec
from getpatter.carriers.host import StreamDirection
from getpatter.server.calls import OutboundRegistry
from getpatter.server.media_socket import serve_media_socket, serve_trusted_socket
from getpatter.server.state import ServerState
from getpatter.server.stream_gate import StreamExpectation

__all__ = ["ServerHost"]


class ServerHost:
    """Adapts one :class:`ServerState` to what carrier routes may use: public host, signature policy,
    the outbound-call book, recording events, admission, stream tokens and the media-socket runner."""

    __slots__ = ("_state",)

    def __init__(self, state: ServerState) -> None:
        self._state = state

    @property
    def webhook_host(self) -> str:
        return self._state.webhook_host

    @property
    def verify_signatures(self) -> bool:
        return self._state.config.verify_signatures

    @property
    def outbound(self) -> OutboundRegistry:
        return self._state.outbound

    def recording_saved(
        self,
        call_id: str,
        carrier: str,
        *,
        url: str,
        recording_id: str,
        status: str = "completed",
        duration_seconds: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self._state.events.emit(
            RecordingSaved(
                call_id=call_id,
                carrier=carrier,
                url=url,
                recording_id=recording_id,
                status=status,
                duration_seconds=duration_seconds,
                details=dict(details or {}),
            )
        )

    async def admit(self, call_id: str, direction: StreamDirection) -> bool:
        return await self._state.admission.try_admit(call_id, direction) is not None

    def stream_token(self, call_id: str, direction: StreamDirection) -> str:
        # The gate also expects this call's socket: it skips the per-IP cap while it starts.
        return self._state.stream_gate.mint(call_id, direction)

    async def run_media(
        self,
        websocket: WebSocket,
        codec: MediaCodec,
        *,
        call_id: str,
        direction: StreamDirection,
        token_subject: str = "",
        url_token: str | None = None,
    ) -> None:
        state = self._state
        hint = call_id or token_subject or direction  # until ``start`` names the call

        def make_session() -> CallSession:
            return CallSession(
                state.runtime, codec, websocket.send_text, call_id_hint=hint, direction=direction
            )

        expect = StreamExpectation(call_id, direction, subject=token_subject, url_token=url_token)
        await serve_media_socket(state, websocket, make_session, expect)

    async def run_trusted_media(self, websocket: WebSocket, codec: MediaCodec, *, carrier: str) -> None:
        state = self._state
        # Same agent, callbacks and observers as every call; its own carrier name and no REST control.
        runtime = replace(state.runtime, carrier=carrier, make_control=_no_control)

        def make_session() -> CallSession:
            return CallSession(runtime, codec, websocket.send_text, call_id_hint=carrier, direction="inbound")

        await serve_trusted_socket(state, websocket, codec, make_session)


def _no_control(call_id: str) -> None:
    return None
