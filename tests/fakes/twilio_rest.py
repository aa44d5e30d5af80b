"""``FakeTwilioRest``: Twilio's REST API, strict, on 127.0.0.1 (twilio.md §4). Use ``FakeTwilio`` from
``tests/fakes/twilio.py``, which adds the carrier side of calls.

REST (``fake.app``, serve it with ``tests.fakes.server.running``): Basic auth ``account_sid:auth_token``
(401 code 20003 otherwise), form-encoded bodies only (a JSON body reads as empty, as at Twilio), Twilio's
error JSON ``{code, message, more_info, status}``. Routes under ``/2010-04-01/Accounts/{AccountSid}/``:

* ``Calls.json`` POST: ``To``/``From`` required (21201/21213), E.164 (21211/21212), ``From`` owned (21210),
  one of ``Url``/``Twiml``/``ApplicationSid`` (21200), well-formed ``Twiml`` <= 4000 chars, enum checks on
  methods, ``StatusCallbackEvent``, ``Timeout``, ``MachineDetection``, ``AsyncAmd``, ``Record``. 201 with
  the Call resource (``status`` ``queued``) and a new ``FakeCall`` in ``fake.calls``.
* ``Calls/{CA}.json`` GET (fetch) and POST (update): ``Status=completed`` or a new ``Twiml``/``Url`` ends
  the live media stream with ``stop`` + close 1000 and sets ``call.ended_by`` (``rest-completed``,
  ``rest-twiml``, ``rest-url``) before the response is sent; new TwiML/Urls land in
  ``call.twiml_updates``. A call that is over answers 400/21220; an unknown one 404/20404.
* ``Calls/{CA}/Recordings.json`` POST (live calls only): 201 with a Recording, kept in ``fake.recordings``.
* ``IncomingPhoneNumbers.json`` GET (``PhoneNumber`` filter, partial match like Twilio) and
  ``IncomingPhoneNumbers/{PN}.json`` POST (``VoiceUrl``, ``VoiceMethod``, ``StatusCallback``, ...).

Every request is recorded in ``fake.requests`` (``RecordedRequest``: method, path, query, form with repeated
keys as lists, status answered); ``fake.inject_error(status, code, retry_after=...)`` makes the next
authorised request(s) fail.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.twilio_media import FakeCall

DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "fake_auth_token_0123456789abcdef"
API_PREFIX = "/2010-04-01/Accounts"

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_LIST_PARAMS = frozenset({"StatusCallbackEvent", "RecordingStatusCallbackEvent"})
_METHOD_PARAMS = (
    "Method",
    "FallbackMethod",
    "StatusCallbackMethod",
    "AsyncAmdStatusCallbackMethod",
    "RecordingStatusCallbackMethod",
)
_CALL_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
_LIVE = ("queued", "ringing", "in-progress")
_DATE = "Mon, 01 Jan 2026 12:00:00 +0000"


class FakeTwilioError(AssertionError):
    """The product did something real Twilio would not accept (bad TwiML, refused webhook, bad URL)."""


@dataclass(frozen=True)
class RecordedRequest:
    """One REST request. ``form`` keeps repeated keys (and the list params ``StatusCallbackEvent``,
    ``RecordingStatusCallbackEvent``) as lists, other values as plain strings. ``status`` is what the fake
    answered."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str | list[str]]
    content_type: str
    authorized: bool
    status: int


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]] = ()) -> str:
    """Twilio's HMAC-SHA1 signature, written here independently of getpatter's implementation."""
    grouped: dict[str, set[str]] = collections.defaultdict(set)
    for key, value in params:
        grouped[key].add(value)
    data = url + "".join(k + v for k in sorted(grouped) for v in sorted(grouped[k]))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _group_form(pairs: Iterable[tuple[str, str]]) -> dict[str, str | list[str]]:
    out: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = [value] if key in _LIST_PARAMS else value
    return out


def _formatted(number: str) -> str:
    digits = number[2:] if number.startswith("+1") and len(number) == 12 else ""
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}" if digits else number


def _absolute_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class FakeTwilioRest:
    """A strict fake of Twilio for one account. See the module docstring for the REST surface.

    Attributes: ``account_sid``, ``auth_token``, ``requests`` (``RecordedRequest``s), ``calls`` (sid ->
    ``FakeCall``, inbound and outbound), ``numbers`` (PN sid -> IncomingPhoneNumber resource dict),
    ``recordings`` (Recording resource dicts), ``webhooks`` (``httpx.Response``s of webhooks it posted).
    """

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        owned_numbers: Iterable[str] = ("+15550002222",),
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[RecordedRequest] = []
        self.calls: dict[str, FakeCall] = {}
        self.recordings: list[dict[str, Any]] = []
        self.webhooks: list[httpx.Response] = []
        self.numbers: dict[str, dict[str, Any]] = {}
        for number in owned_numbers:
            self.add_number(number)
        self._injected: collections.deque[tuple[int, int, str, dict[str, str]]] = collections.deque()
        self._bg: set[asyncio.Task[None]] = set()
        base = f"{API_PREFIX}/{{account}}"
        self.app = Starlette(
            routes=[
                Route(f"{base}/Calls.json", self._create_call, methods=["POST"]),
                Route(f"{base}/Calls/{{sid}}.json", self._call, methods=["GET", "POST"]),
                Route(f"{base}/Calls/{{sid}}/Recordings.json", self._create_recording, methods=["POST"]),
                Route(f"{base}/IncomingPhoneNumbers.json", self._list_numbers, methods=["GET"]),
                Route(f"{base}/IncomingPhoneNumbers/{{sid}}.json", self._update_number, methods=["POST"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
            ]
        )

    # ---- setup and fault injection --------------------------------------------------------------------

    def add_number(self, phone_number: str) -> dict[str, Any]:
        """Put ``phone_number`` on the account (an IncomingPhoneNumber with no voice URL yet)."""
        sid = new_sid("PN")
        resource: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "phone_number": phone_number,
            "friendly_name": _formatted(phone_number),
            "voice_url": "",
            "voice_method": "POST",
            "voice_fallback_url": "",
            "status_callback": "",
            "status_callback_method": "POST",
            "voice_application_sid": "",
            "trunk_sid": None,
            "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
            "api_version": "2010-04-01",
            "date_created": _DATE,
            "date_updated": _DATE,
            "uri": f"{API_PREFIX}/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
        }
        self.numbers[sid] = resource
        return resource

    def number(self, phone_number: str) -> dict[str, Any]:
        """The IncomingPhoneNumber resource of an owned number (KeyError if not owned)."""
        for resource in self.numbers.values():
            if resource["phone_number"] == phone_number:
                return resource
        raise KeyError(phone_number)

    def inject_error(
        self,
        status: int,
        code: int,
        message: str = "Injected failure",
        *,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` authorised REST requests answer ``status`` with Twilio's error body."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        for _ in range(times):
            self._injected.append((status, code, message, headers))

    def requests_to(self, suffix: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path ends with ``suffix`` (and with ``method``, if given)."""
        return [r for r in self.requests if r.path.endswith(suffix) and method in (None, r.method)]

    # ---- REST plumbing --------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    async def _begin(self, request: Request) -> tuple[dict[str, str | list[str]], Response | None]:
        """Parse and authorise; returns the form and an early error response, if any."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        form: dict[str, str | list[str]] = {}
        if request.method == "POST" and ctype == "application/x-www-form-urlencoded":
            # Parsed by hand: python-multipart (Starlette's form parser) is not a dependency.
            body = (await request.body()).decode("utf-8", "replace")
            form = _group_form(parse_qsl(body, keep_blank_values=True))
        authorized = self._authorized(request)
        early: Response | None = None
        if not authorized:
            early = _error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        elif request.path_params.get("account") != self.account_sid:
            early = _error(404, 20404, f"The requested resource {request.url.path} was not found")
        elif self._injected:
            status, code, message, headers = self._injected.popleft()
            early = _error(status, code, message, headers)
        request.state.record = (ctype, authorized, form)
        return form, early

    def _record(self, request: Request, response: Response) -> Response:
        ctype, authorized, form = getattr(request.state, "record", ("", False, {}))
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                form=form,
                content_type=ctype,
                authorized=authorized,
                status=response.status_code,
            )
        )
        return response

    async def _not_found(self, request: Request) -> Response:
        await self._begin(request)
        resp = _error(404, 20404, f"The requested resource {request.url.path} was not found")
        return self._record(request, resp)

    @staticmethod
    def _one(form: Mapping[str, str | list[str]], key: str) -> str | None:
        value = form.get(key)
        return value[-1] if isinstance(value, list) else value

    # ---- Calls ---------------------------------------------------------------------------------------

    def call_resource(self, call: FakeCall) -> dict[str, Any]:
        """The Call resource JSON Twilio would return for ``call``."""
        uri = f"{API_PREFIX}/{self.account_sid}/Calls/{call.sid}"
        return {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "parent_call_sid": None,
            "to": call.to,
            "to_formatted": _formatted(call.to),
            "from": call.from_,
            "from_formatted": _formatted(call.from_),
            "phone_number_sid": None,
            "status": call.status,
            "start_time": None,
            "end_time": None,
            "duration": None,
            "price": None,
            "price_unit": "USD",
            "direction": call.direction,
            "answered_by": None,
            "api_version": "2010-04-01",
            "forwarded_from": None,
            "group_sid": None,
            "caller_name": None,
            "queue_time": "0",
            "trunk_sid": None,
            "date_created": _DATE,
            "date_updated": _DATE,
            "uri": uri + ".json",
            "subresource_uris": {"recordings": uri + "/Recordings.json", "streams": uri + "/Streams.json"},
        }

    def _validate_common(self, form: Mapping[str, str | list[str]]) -> Response | None:
        for key in _METHOD_PARAMS:
            value = self._one(form, key)
            if value is not None and value not in ("GET", "POST"):
                return _error(400, 21200, f"{key} must be GET or POST, got {value!r}")
        for key in ("Url", "StatusCallback", "AsyncAmdStatusCallback", "RecordingStatusCallback"):
            value = self._one(form, key)
            if value is not None and not _absolute_http_url(value):
                return _error(400, 21205, f"{key} is not a valid absolute URL: {value!r}")
        twiml = self._one(form, "Twiml")
        if twiml is not None:
            if len(twiml) > 4000:
                return _error(400, 21200, "Twiml must be at most 4000 characters")
            try:
                root = ET.fromstring(twiml)
            except ET.ParseError as exc:
                return _error(400, 21200, f"Twiml is not valid XML: {exc}")
            if root.tag != "Response":
                return _error(400, 21200, "Twiml root element must be <Response>")
        return None

    async def _create_call(self, request: Request) -> Response:
        form, early = await self._begin(request)
        if early is not None:
            return self._record(request, early)
        return self._record(request, self._do_create_call(form))

    def _do_create_call(self, form: dict[str, str | list[str]]) -> Response:
        to, from_ = self._one(form, "To"), self._one(form, "From")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not (_E164.match(to) or to.startswith(("client:", "sip:"))):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _E164.match(from_):
            return _error(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        if all(n["phone_number"] != from_ for n in self.numbers.values()):
            return _error(400, 21210, f"The source phone number provided, {from_}, is not yet verified")
        if not any(self._one(form, k) for k in ("Url", "Twiml", "ApplicationSid")):
            return _error(400, 21200, "Url, Twiml or ApplicationSid is required to create a call")
        if (bad := self._validate_common(form)) is not None:
            return bad
        events = form.get("StatusCallbackEvent", [])
        for event in [events] if isinstance(events, str) else events:
            for name in event.split():
                if name not in _CALL_EVENTS:
                    return _error(400, 21200, f"Invalid StatusCallbackEvent {name!r}")
        timeout = self._one(form, "Timeout")
        if timeout is not None and not (timeout.isdigit() and 1 <= int(timeout) <= 600):
            return _error(400, 21200, f"Timeout must be an integer 1-600, got {timeout!r}")
        md = self._one(form, "MachineDetection")
        if md is not None and md not in ("Enable", "DetectMessageEnd"):
            return _error(400, 21200, f"MachineDetection must be Enable or DetectMessageEnd, got {md!r}")
        for key in ("AsyncAmd", "Record"):
            value = self._one(form, key)
            if value is not None and value not in ("true", "false"):
                return _error(400, 21200, f"{key} must be true or false, got {value!r}")
        call = FakeCall(
            sid=new_sid("CA"),
            account_sid=self.account_sid,
            from_=from_,
            to=to,
            direction="outbound-api",
            create_form=form,
            twiml=self._one(form, "Twiml"),
        )
        self.calls[call.sid] = call
        return JSONResponse(self.call_resource(call), status_code=201)

    async def _call(self, request: Request) -> Response:
        form, early = await self._begin(request)
        if early is not None:
            return self._record(request, early)
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            resp: Response = _error(404, 20404, f"The requested resource {request.url.path} was not found")
        elif request.method == "GET":
            resp = JSONResponse(self.call_resource(call))
        else:
            resp = self._do_update_call(call, form)
        return self._record(request, resp)

    def _do_update_call(self, call: FakeCall, form: dict[str, str | list[str]]) -> Response:
        twiml, url, status = self._one(form, "Twiml"), self._one(form, "Url"), self._one(form, "Status")
        if twiml is not None and url is not None:
            return _error(400, 21200, "Url and Twiml are mutually exclusive")
        if status is not None and status not in ("completed", "canceled"):
            return _error(400, 21200, f"Status must be completed or canceled, got {status!r}")
        if twiml is None and url is None and status is None:
            return _error(400, 21200, "Nothing to update: give Url, Twiml or Status")
        if (bad := self._validate_common(form)) is not None:
            return bad
        if call.status not in _LIVE:
            return _error(400, 21220, "Call is not in-progress. Cannot redirect.")
        if status == "canceled" and call.status == "in-progress":
            return JSONResponse(self.call_resource(call))  # Twilio ignores canceling an answered call
        if status is not None:
            reason = f"rest-{status}"
            call.status = status
        else:
            new = twiml if twiml is not None else url
            assert new is not None
            call.twiml_updates.append(new)
            reason = "rest-twiml" if twiml is not None else "rest-url"
            ends = twiml is not None and "<Hangup" in twiml and "<Dial" not in twiml
            call.status = "completed" if ends else call.status
        if call.connected:
            call.ended_by = reason
            self._spawn(call.end_by_carrier(reason))
        elif call.ended_by is None and call.status not in _LIVE:
            call.ended_by = reason
        return JSONResponse(self.call_resource(call))

    async def _create_recording(self, request: Request) -> Response:
        form, early = await self._begin(request)
        if early is not None:
            return self._record(request, early)
        call = self.calls.get(request.path_params["sid"])
        if call is None:
            return self._record(request, _error(404, 20404, f"Call {request.path_params['sid']} not found"))
        if call.status != "in-progress":
            return self._record(request, _error(400, 21220, "Call is not in-progress. Cannot record."))
        if (bad := self._validate_common(form)) is not None:
            return self._record(request, bad)
        sid = new_sid("RE")
        recording: dict[str, Any] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "call_sid": call.sid,
            "conference_sid": None,
            "status": "in-progress",
            "start_time": _DATE,
            "duration": "-1",
            "channels": 1,
            "source": "StartCallRecordingAPI",
            "track": self._one(form, "RecordingTrack") or "both",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "encryption_details": None,
            "api_version": "2010-04-01",
            "date_created": _DATE,
            "date_updated": _DATE,
            "uri": f"{API_PREFIX}/{self.account_sid}/Calls/{call.sid}/Recordings/{sid}.json",
            "status_callback": self._one(form, "RecordingStatusCallback"),
        }
        self.recordings.append(recording)
        return self._record(request, JSONResponse(recording, status_code=201))

    # ---- IncomingPhoneNumbers -------------------------------------------------------------------------

    async def _list_numbers(self, request: Request) -> Response:
        _, early = await self._begin(request)
        if early is not None:
            return self._record(request, early)
        wanted = request.query_params.get("PhoneNumber")
        items = [
            n for n in self.numbers.values() if wanted is None or wanted.replace("*", "") in n["phone_number"]
        ]
        uri = f"{API_PREFIX}/{self.account_sid}/IncomingPhoneNumbers.json"
        body = {
            "incoming_phone_numbers": items,
            "page": 0,
            "page_size": 50,
            "start": 0,
            "end": max(0, len(items) - 1),
            "first_page_uri": uri + "?PageSize=50&Page=0",
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": uri,
        }
        return self._record(request, JSONResponse(body))

    async def _update_number(self, request: Request) -> Response:
        form, early = await self._begin(request)
        if early is not None:
            return self._record(request, early)
        resource = self.numbers.get(request.path_params["sid"])
        if resource is None:
            return self._record(
                request, _error(404, 20404, f"The requested resource {request.url.path} was not found")
            )
        for key in ("VoiceUrl", "VoiceFallbackUrl", "StatusCallback"):
            value = self._one(form, key)
            if value and not _absolute_http_url(value):
                return self._record(request, _error(400, 22105, f"{key} is not a valid URL: {value!r}"))
        for key in ("VoiceMethod", "VoiceFallbackMethod", "StatusCallbackMethod"):
            value = self._one(form, key)
            if value is not None and value not in ("GET", "POST"):
                return self._record(request, _error(400, 21200, f"{key} must be GET or POST"))
        fields = {
            "VoiceUrl": "voice_url",
            "VoiceMethod": "voice_method",
            "VoiceFallbackUrl": "voice_fallback_url",
            "StatusCallback": "status_callback",
            "StatusCallbackMethod": "status_callback_method",
            "VoiceApplicationSid": "voice_application_sid",
            "FriendlyName": "friendly_name",
        }
        for key, attr in fields.items():
            value = self._one(form, key)
            if value is not None:
                resource[attr] = value
        return self._record(request, JSONResponse(resource))

    # ---- background work ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def aclose(self) -> None:
        """Finish background work (stream endings) and close every live stream."""
        for task in list(self._bg):
            with contextlib.suppress(Exception):
                await task
        await asyncio.gather(*(call.aclose() for call in self.calls.values()), return_exceptions=True)
