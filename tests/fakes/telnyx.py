"""Fake Telnyx for tests: strict Call Control v2 REST + the carrier side of calls (telnyx.md §1-§5).

REST (``fake.app``; serve with ``tests.fakes.server.running`` and point the product at
``srv.http_url + "/v2"``): ``Authorization: Bearer <api_key>`` (401 otherwise), JSON bodies only (422 for
anything else), Telnyx's error body ``{"errors": [{"code", "title", "detail"}]}``.

* ``POST /v2/calls`` (dial): ``connection_id`` must be ours, ``to``/``from`` E.164, stream fields checked.
* ``POST /v2/calls/{call_control_id}/actions/{action}``: each action's fields checked against the doc
  (unknown fields -> 422 ``10015``); an unknown call is 404; a call that is over is 422 ``90018``.
  ``answer`` needs a parked inbound call. ``hangup`` ends the media stream (``stop`` + close) before the
  response, then posts signed ``call.hangup`` and ``streaming.stopped``.

Every request lands in ``fake.requests``; ``fake.inject_error(status, code)`` fails the next ones.
The carrier side below (webhooks and inbound calls) is ``telnyx_carrier.py``.

Carrier side: ``start_inbound_call(server_http_url, public_host)`` posts a signed ``call.initiated``,
waits for the ``answer`` command, checks its stream fields, posts ``call.answered`` and
``streaming.started``, then dials the stream URL (``wss://{public_host}/...`` rewritten to the local
server, as a tunnel would) and returns the live ``FakeTelnyxCall``. Webhooks are signed with a fresh test
Ed25519 key through ``cryptography`` (``fake.public_key`` is its base64 raw public key).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.telnyx_carrier import FakeTelnyxError, TelnyxCarrierSide, sign
from tests.fakes.telnyx_media import FakeTelnyxCall, SentFrame

__all__ = ["FakeTelnyx", "FakeTelnyxCall", "FakeTelnyxError", "RecordedCommand", "SentFrame", "sign"]

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_STREAM_FIELDS = {
    "stream_url",
    "stream_track",
    "stream_codec",
    "stream_bidirectional_mode",
    "stream_bidirectional_codec",
    "stream_bidirectional_sampling_rate",
    "stream_bidirectional_target_legs",
    "stream_auth_token",
}
_COMMON = {"client_state", "command_id"}
#: action -> (required fields, allowed fields)
_ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "answer": (set(), _COMMON | _STREAM_FIELDS | {"webhook_url", "send_silence_when_idle"}),
    "streaming_start": ({"stream_url"}, _COMMON | _STREAM_FIELDS | {"custom_parameters"}),
    "streaming_stop": (set(), _COMMON | {"stream_id"}),
    "hangup": (set(), _COMMON | {"custom_headers"}),
    "transfer": ({"to"}, _COMMON | {"from", "from_display_name", "timeout_secs", "webhook_url"}),
    "record_start": (
        {"format", "channels"},
        _COMMON | {"recording_track", "play_beep", "max_length", "trim"},
    ),
    "record_stop": (set(), _COMMON | {"recording_id"}),
    "send_dtmf": ({"digits"}, _COMMON | {"duration_millis"}),
    "reject": ({"cause"}, _COMMON),
}
#: ``reject`` cause -> the ``hangup_cause`` of the ``call.hangup`` that follows.
_REJECT_HANGUP = {
    "USER_BUSY": "user_busy",
    "CALL_REJECTED": "call_rejected",
    "NOT_FOUND": "not_found",
    "TEMPORARILY_UNAVAILABLE": "unspecified",
}
_ENUMS = {
    "stream_track": {"inbound_track", "outbound_track", "both_tracks"},
    "stream_codec": {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default"},
    "stream_bidirectional_mode": {"mp3", "rtp"},
    "stream_bidirectional_codec": {"PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"},
    "stream_bidirectional_sampling_rate": {8000, 16000, 22050, 24000, 48000},
    "format": {"wav", "mp3"},
    "channels": {"single", "dual"},
    "cause": set(_REJECT_HANGUP),
}


@dataclass(frozen=True)
class RecordedCommand:
    """One REST request: ``action`` is ``dial`` for ``POST /calls``; ``body`` the parsed JSON (or None)."""

    method: str
    path: str
    action: str
    call_control_id: str | None
    body: dict[str, Any] | None
    authorization: str | None
    content_type: str
    status: int


def _err(status: int, code: str, title: str, detail: str = "") -> JSONResponse:
    return JSONResponse(
        {"errors": [{"code": code, "title": title, "detail": detail or title}]}, status_code=status
    )


class FakeTelnyx(TelnyxCarrierSide):
    """A strict fake Telnyx account. ``calls``: call_control_id -> ``FakeTelnyxCall``."""

    def __init__(
        self, api_key: str = "KEYfake0123456789abcdef", connection_id: str = "1684641123236054244"
    ) -> None:
        self.api_key = api_key
        self.connection_id = connection_id
        self.signing_key = Ed25519PrivateKey.generate()
        self.public_key = base64.b64encode(
            self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        ).decode()
        self.calls: dict[str, FakeTelnyxCall] = {}
        self.requests: list[RecordedCommand] = []
        self.webhooks: list[tuple[str, httpx.Response]] = []
        self._faults: list[tuple[int, str]] = []
        self._http: httpx.AsyncClient | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._server: tuple[str, str] | None = None  # (server http url, public host) of the live product
        self.app = Starlette(
            routes=[
                Route("/v2/calls", self._dial, methods=["POST"]),
                Route("/v2/calls/{ccid}/actions/{action}", self._action, methods=["POST"]),
                Route("/v2/phone_numbers", self._list_numbers, methods=["GET"]),
                Route("/v2/phone_numbers/{nid}", self._update_number, methods=["PATCH"]),
                Route("/v2/call_control_applications/{app}", self._update_application, methods=["PATCH"]),
            ]
        )
        #: Numbers of the account: id -> resource (``id``, ``phone_number``, ``connection_id``).
        self.numbers: dict[str, dict[str, Any]] = {}
        #: The Call Control application ``connection_id``, as the last PATCH left it.
        self.application: dict[str, Any] = {"id": connection_id, "webhook_event_url": None}

    def add_number(self, phone_number: str, connection_id: str = "") -> dict[str, Any]:
        """Own ``phone_number`` (on ``connection_id``, none by default); returns its resource."""
        nid = str(1_000_000_000 + len(self.numbers))
        self.numbers[nid] = {"id": nid, "record_type": "phone_number", "phone_number": phone_number,
                             "connection_id": connection_id or None, "status": "active"}  # fmt: skip
        return self.numbers[nid]

    def inject_error(self, status: int, code: str = "10007", count: int = 1) -> None:
        self._faults.extend([(status, code)] * count)

    def commands(self, action: str) -> list[RecordedCommand]:
        return [r for r in self.requests if r.action == action]

    # ---- REST: numbers and the Call Control application (telnyx.md §2) --------------------------------

    def _authorized(self, request: Request, action: str, body: dict[str, Any] | None) -> JSONResponse | None:
        auth = request.headers.get("authorization")
        ok = auth == f"Bearer {self.api_key}"
        fault = self._faults.pop(0) if ok and self._faults else None
        status = 401 if not ok else fault[0] if fault else 200
        self.requests.append(
            RecordedCommand(request.method, request.url.path, action, None, body, auth,
                            request.headers.get("content-type", ""), status)
        )  # fmt: skip
        if not ok:
            return _err(401, "10009", "Authentication failed", "The API key is missing or wrong.")
        if fault:
            return _err(fault[0], fault[1], "Injected failure")
        return None

    async def _json_body(self, request: Request) -> dict[str, Any] | None:
        with contextlib.suppress(ValueError):
            parsed = json.loads(await request.body() or b"null")
            if isinstance(parsed, dict) and request.headers.get("content-type", "").startswith(
                "application/json"
            ):
                return parsed
        return None

    async def _list_numbers(self, request: Request) -> JSONResponse:
        refused = self._authorized(request, "list_numbers", None)
        if refused is not None:
            return refused
        wanted = request.query_params.get("filter[phone_number]")
        data = [n for n in self.numbers.values() if wanted is None or n["phone_number"] == wanted]
        return JSONResponse({"data": data, "meta": {"total_results": len(data), "page_number": 1}})

    async def _update_number(self, request: Request) -> JSONResponse:
        body = await self._json_body(request)
        refused = self._authorized(request, "update_number", body)
        if refused is not None:
            return refused
        number = self.numbers.get(request.path_params["nid"])
        if number is None:
            self._fix_status(404)
            return _err(404, "10005", "Resource not found")
        if body is None or set(body) - {"connection_id", "tags", "customer_reference"}:
            self._fix_status(422)
            return _err(422, "10015", "Invalid request", "unknown or missing fields")
        if "connection_id" in body and body["connection_id"] != self.connection_id:
            self._fix_status(422)
            return _err(422, "10015", "Invalid connection_id", "no such connection")
        number.update(body)
        return JSONResponse({"data": number})

    async def _update_application(self, request: Request) -> JSONResponse:
        body = await self._json_body(request)
        refused = self._authorized(request, "update_application", body)
        if refused is not None:
            return refused
        if request.path_params["app"] != self.connection_id:
            self._fix_status(404)
            return _err(404, "10005", "Resource not found")
        allowed = {
            "application_name", "webhook_event_url", "webhook_event_failover_url", "webhook_api_version",
            "webhook_timeout_secs", "first_command_timeout", "first_command_timeout_secs", "dtmf_type",
            "anchorsite_override", "inbound", "outbound", "active",
        }  # fmt: skip
        url = (body or {}).get("webhook_event_url")
        if body is None or set(body) - allowed or (url is not None and not str(url).startswith("https://")):
            self._fix_status(422)
            return _err(422, "10015", "Invalid request", "unknown fields or a webhook URL that is not https")
        self.application.update(body)
        return JSONResponse({"data": self.application})

    # ---- REST -----------------------------------------------------------------------------------------

    async def _parse(self, request: Request, action: str, ccid: str | None) -> dict[str, Any] | JSONResponse:
        auth = request.headers.get("authorization")
        ctype = request.headers.get("content-type", "")
        raw = await request.body()
        body: dict[str, Any] | None = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw) if raw else None
            body = parsed if isinstance(parsed, dict) else None

        def record(status: int) -> None:
            self.requests.append(
                RecordedCommand("POST", request.url.path, action, ccid, body, auth, ctype, status)
            )

        if auth != f"Bearer {self.api_key}":
            record(401)
            return _err(401, "10009", "Authentication failed", "The API key is missing or wrong.")
        if not ctype.startswith("application/json") or body is None:
            record(422)
            return _err(422, "10015", "Invalid request", "Body must be a JSON object.")
        if self._faults:
            status, code = self._faults.pop(0)
            record(status)
            return _err(status, code, "Injected failure")
        record(200)
        return body

    def _check_fields(self, body: dict[str, Any], required: set[str], allowed: set[str]) -> str | None:
        missing = required - set(body)
        if missing:
            return f"missing required field(s) {sorted(missing)}"
        unknown = set(body) - allowed - required
        if unknown:
            return f"unknown field(s) {sorted(unknown)}"
        for key, values in _ENUMS.items():
            if key in body and body[key] not in values:
                return f"{key}={body[key]!r} is not one of {sorted(map(str, values))}"
        url = body.get("stream_url")
        if url is not None and (not isinstance(url, str) or not url.startswith("wss://")):
            return "stream_url must be a wss:// URL"
        state = body.get("client_state")
        if state is not None:
            try:
                base64.b64decode(state, validate=True)
            except ValueError:
                return "client_state must be base64"
        return None

    def _fix_status(self, status: int) -> None:
        last = self.requests[-1]
        self.requests[-1] = RecordedCommand(
            last.method,
            last.path,
            last.action,
            last.call_control_id,
            last.body,
            last.authorization,
            last.content_type,
            status,
        )

    async def _dial(self, request: Request) -> JSONResponse:
        parsed = await self._parse(request, "dial", None)
        if isinstance(parsed, JSONResponse):
            return parsed
        allowed = (
            _COMMON
            | _STREAM_FIELDS
            | {
                "connection_id",
                "to",
                "from",
                "timeout_secs",
                "answering_machine_detection",
                "webhook_url",
            }
        )
        problem = self._check_fields(parsed, {"connection_id", "to", "from"}, allowed)
        if problem is None and parsed["connection_id"] != self.connection_id:
            problem = "connection_id is not a Call Control application of this account"
        if problem is None and not (_E164.match(str(parsed["to"])) and _E164.match(str(parsed["from"]))):
            problem = "to and from must be E.164"
        if problem:
            self._fix_status(422)
            return _err(422, "10015", "Invalid parameter", problem)
        call = FakeTelnyxCall(
            call_control_id="v3:" + secrets.token_urlsafe(30),
            call_leg_id=str(uuid.uuid4()),
            call_session_id=str(uuid.uuid4()),
            from_=parsed["from"],
            to=parsed["to"],
            direction="outgoing",
            state="bridging",
        )
        call.commands.append(("dial", parsed))
        self.calls[call.call_control_id] = call
        data = {
            "call_control_id": call.call_control_id,
            "call_leg_id": call.call_leg_id,
            "call_session_id": call.call_session_id,
            "is_alive": False,
            "record_type": "call",
        }
        return JSONResponse({"data": data})

    async def _action(self, request: Request) -> JSONResponse:
        ccid = request.path_params["ccid"]
        action = request.path_params["action"]
        parsed = await self._parse(request, action, ccid)
        if isinstance(parsed, JSONResponse):
            return parsed
        spec = _ACTIONS.get(action)
        call = self.calls.get(ccid)
        if spec is None or call is None:
            self._fix_status(404)
            return _err(404, "10005", "Resource not found", f"no call {ccid!r} or action {action!r}")
        if call.state == "hangup":
            self._fix_status(422)
            return _err(422, "90018", "Call has already ended")
        problem = self._check_fields(parsed, *spec)
        if (
            problem is None
            and action == "answer"
            and (call.direction != "incoming" or call.state != "parked")
        ):
            problem = "only a parked inbound call can be answered"
        if (
            problem is None
            and action == "reject"
            and (call.direction != "incoming" or call.state != "parked")
        ):
            problem = "only a parked (not yet answered) inbound call can be rejected"
        if problem:
            self._fix_status(422)
            return _err(422, "10015", "Invalid parameter", problem)
        call.commands.append((action, parsed))
        if "client_state" in parsed:
            call.client_state = parsed["client_state"]
        if action == "answer":
            call.state = "answered"
            call.answered.set()
        elif action == "reject":
            call.state = "hangup"
            call.ended_by = "rejected"
            call.answered.set()  # the ring is over either way
            self._spawn(self._post_after_reject(call, _REJECT_HANGUP[parsed["cause"]]))
        elif action in ("hangup", "transfer"):
            await call.end_by_carrier("rest-" + action)
            self._spawn(self._post_after_hangup(call, "normal_clearing"))
        return JSONResponse({"data": {"result": "ok"}})
