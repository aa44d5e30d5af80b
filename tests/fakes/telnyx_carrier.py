"""Fake Telnyx, the carrier side: signed webhooks to the product and inbound calls (telnyx.md §4-§5).

``TelnyxCarrierSide`` is the half of :class:`tests.fakes.telnyx.FakeTelnyx` that calls the product: it
signs and posts webhooks (Ed25519 over ``timestamp|body``), rings the product with an inbound call and,
once answered, dials its media stream. The REST half (what the product calls) is ``telnyx.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from tests.fakes._patience import patient
from tests.fakes.telnyx_media import CODECS, FakeTelnyxCall

VOICE_PATH = "/webhooks/telnyx/voice"


class FakeTelnyxError(AssertionError):
    """The product did something real Telnyx would not accept."""


def sign(private_key: Ed25519PrivateKey, timestamp: str, body: bytes) -> str:
    """Telnyx's webhook signature: Ed25519 over ``timestamp|body``, base64 (telnyx.md §4.2)."""
    return base64.b64encode(private_key.sign(timestamp.encode() + b"|" + body)).decode()


def _event_type(raw: bytes) -> str:
    try:
        data = json.loads(raw).get("data")
        return str(data.get("event_type", "?"))
    except (ValueError, AttributeError):
        return "?"


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class TelnyxCarrierSide:
    """Webhooks and inbound calls of :class:`~tests.fakes.telnyx.FakeTelnyx` (which owns the state)."""

    connection_id: str
    signing_key: Ed25519PrivateKey
    calls: dict[str, FakeTelnyxCall]
    webhooks: list[tuple[str, httpx.Response]]
    _http: httpx.AsyncClient | None
    _background: set[asyncio.Task[Any]]
    _server: tuple[str, str] | None

    # ---- webhooks -------------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # Idle connections dropped well inside the server's 5 s keep-alive (see fakes/twilio.py).
            self._http = httpx.AsyncClient(timeout=patient(10.0), limits=httpx.Limits(keepalive_expiry=1.0))
        return self._http

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def envelope(self, event_type: str, call: FakeTelnyxCall, **extra: Any) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "call_control_id": call.call_control_id,
            "call_leg_id": call.call_leg_id,
            "call_session_id": call.call_session_id,
            "connection_id": self.connection_id,
            "client_state": call.client_state,
            "from": call.from_,
            "to": call.to,
            "state": call.state,
        }
        payload.update(extra)
        data = {
            "record_type": "event",
            "event_type": event_type,
            "id": str(uuid.uuid4()),
            "occurred_at": _now_iso(),
            "payload": payload,
        }
        return {"data": data, "meta": {"attempt": 1, "delivered_to": "https://example.invalid" + VOICE_PATH}}

    async def post_webhook(
        self,
        server_http_url: str,
        body: bytes | dict[str, Any],
        *,
        sign_it: bool = True,
        timestamp: int | None = None,
        signature: str | None = None,
        key: Ed25519PrivateKey | None = None,
    ) -> httpx.Response:
        """POST ``body`` (a dict is serialised once; its exact bytes are signed) as Telnyx does."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Content-Type": "application/json", "User-Agent": "telnyx-webhooks"}
        if sign_it:
            headers["telnyx-timestamp"] = ts
            headers["telnyx-signature-ed25519"] = signature or sign(key or self.signing_key, ts, raw)
        response = await self._client().post(
            server_http_url.rstrip("/") + VOICE_PATH, content=raw, headers=headers
        )
        self.webhooks.append((_event_type(raw), response))
        return response

    async def _post_after_hangup(self, call: FakeTelnyxCall, cause: str) -> None:
        if self._server is None:
            return
        url = self._server[0]
        with contextlib.suppress(httpx.HTTPError):
            await self.post_webhook(
                url, self.envelope("call.hangup", call, hangup_cause=cause, hangup_source="callee")
            )
            await self.post_webhook(url, self.envelope("streaming.stopped", call, stream_url=call.stream_url))

    async def _post_after_reject(self, call: FakeTelnyxCall, cause: str) -> None:
        if self._server is None:
            return
        with contextlib.suppress(httpx.HTTPError):
            await self.post_webhook(
                self._server[0],
                self.envelope("call.hangup", call, hangup_cause=cause, hangup_source="callee"),
            )

    # ---- the carrier side of an inbound call ---------------------------------------------------------

    def new_inbound(self, from_: str = "+15550001111", to: str = "+15550002222") -> FakeTelnyxCall:
        call = FakeTelnyxCall(
            call_control_id="v3:" + secrets.token_urlsafe(30),
            call_leg_id=str(uuid.uuid4()),
            call_session_id=str(uuid.uuid4()),
            from_=from_,
            to=to,
            direction="incoming",
        )
        self.calls[call.call_control_id] = call
        return call

    async def start_inbound_call(
        self,
        server_http_url: str,
        public_host: str,
        *,
        from_: str = "+15550001111",
        to: str = "+15550002222",
        answer_timeout: float = 5.0,
    ) -> FakeTelnyxCall:
        """Ring the product and return the live call (``connected`` and ``start`` sent, pacer running).
        A call the product refused (``reject``) comes back unanswered: ``state`` ``hangup``, ``ended_by``
        ``rejected``, its ``reject`` command in ``commands``."""
        self._server = (server_http_url, public_host)
        call = self.new_inbound(from_, to)
        initiated = self.envelope(
            "call.initiated",
            call,
            direction="incoming",
            caller_id_name="Test Caller",
            offered_codecs="PCMU,PCMA",
        )
        response = await self.post_webhook(server_http_url, initiated)
        if response.status_code != 200:
            raise FakeTelnyxError(
                f"call.initiated answered HTTP {response.status_code}: {response.text[:200]!r}"
            )
        try:
            await asyncio.wait_for(call.answered.wait(), answer_timeout)
        except TimeoutError:
            raise FakeTelnyxError(
                f"no answer command for {call.call_control_id} within {answer_timeout} s"
            ) from None
        if call.state == "hangup":  # rejected: never answered, no stream
            return call
        answer = next(body for action, body in call.commands if action == "answer")
        codec = answer.get("stream_codec")
        if (
            answer.get("stream_bidirectional_mode") != "rtp"
            or answer.get("stream_bidirectional_codec") != codec
        ):
            raise FakeTelnyxError(
                f"answer must ask for rtp bidirectional audio in the stream codec: {answer}"
            )
        if codec not in CODECS:
            raise FakeTelnyxError(f"this fake streams L16 or PCMU, not {codec!r}")
        url = str(answer.get("stream_url", ""))
        parts = urlsplit(url)
        if parts.netloc != public_host:
            raise FakeTelnyxError(f"stream_url {url!r} is not on the public host {public_host!r}")
        call.stream_url = url
        await self.post_webhook(server_http_url, self.envelope("call.answered", call))
        await self.post_webhook(server_http_url, self.envelope("streaming.started", call, stream_url=url))
        local = (
            "ws://"
            + urlsplit(server_http_url).netloc
            + parts.path
            + (f"?{parts.query}" if parts.query else "")
        )
        try:
            ws = await connect(local, open_timeout=5, close_timeout=2, max_size=16 * 1024 * 1024)
        except InvalidStatus as exc:
            raise FakeTelnyxError(
                f"media WebSocket {local} refused: HTTP {exc.response.status_code}"
            ) from None
        except (OSError, WebSocketException) as exc:
            raise FakeTelnyxError(f"media WebSocket {local} failed: {exc!r}") from None
        await call._attach(ws, str(uuid.uuid4()).upper(), codec)
        return call

    async def aclose(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await call.aclose()
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
        if self._http is not None:
            await self._http.aclose()
            self._http = None


__all__ = ["VOICE_PATH", "FakeTelnyxError", "TelnyxCarrierSide", "sign"]
