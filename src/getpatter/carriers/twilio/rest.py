"""Twilio's 2010-04-01 REST API: the few calls the SDK needs (twilio.md §4), and live-call control.

One lazily-created ``httpx.AsyncClient`` per client object, Basic auth, form-encoded bodies (list params as
repeated keys). Refusals are mapped to the SDK's errors with Twilio's error code and message; the auth
token never appears in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from getpatter._http_status import error_for_status
from getpatter._pool import pooled_client
from getpatter.carriers.base import CarrierControl
from getpatter.carriers.twilio.twiml import dial as _dial_twiml
from getpatter.carriers.twilio.twiml import say_and_hangup as say_and_hangup_twiml
from getpatter.errors import (
    ErrorCode,
    PatterConnectionError,
    PatterError,
)

__all__ = ["DEFAULT_BASE_URL", "TwilioApiError", "TwilioCallControl", "TwilioRestClient"]

DEFAULT_BASE_URL = "https://api.twilio.com"
_API = "/2010-04-01/Accounts"
_SID_SAFE = re.compile(r"^[A-Za-z0-9]+$")
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
#: Twilio codes meaning "this call is already over": unknown resource, call not in progress.
_CALL_GONE_CODES = frozenset({20404, 21220})

Form = dict[str, str | list[str]]


class TwilioApiError(PatterError):
    """Twilio refused a request for a reason other than auth, rate or availability (4xx validation,
    unknown resource). ``status`` is the HTTP status, ``twilio_code`` Twilio's numeric error code."""

    default_code = ErrorCode.PROVIDER_ERROR

    def __init__(self, message: str, *, status: int, twilio_code: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.twilio_code = twilio_code


def _safe_sid(value: str, what: str) -> str:
    """SIDs go into URL paths: refuse anything that could change the path."""
    if not _SID_SAFE.match(value):
        raise ValueError(f"invalid Twilio {what}: {value[:40]!r}")
    return value


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _error_detail(response: httpx.Response) -> tuple[int | None, str]:
    """Twilio's ``code`` and ``message`` (legacy body) or ``code`` and ``detail``/``title`` (RFC 9457)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.reason_phrase or "no error body"
    if not isinstance(body, dict):
        return None, response.reason_phrase or "unexpected error body"
    code = body.get("code")
    message = body.get("message") or body.get("detail") or body.get("title") or response.reason_phrase
    return (code if isinstance(code, int) else None), str(message)[:500]


class TwilioRestClient:
    """Async client for one Twilio account. Use ``base_url`` to point it at a fake or a regional edge."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
    ) -> None:
        self._account_sid = _safe_sid(account_sid, "account SID")
        self._auth_token = auth_token
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"TwilioRestClient(account_sid={self._account_sid!r}, base_url={self._base_url!r})"

    @property
    def account_sid(self) -> str:
        return self._account_sid

    def _client(self) -> httpx.AsyncClient:
        if self._http is None or self._http.is_closed:
            self._http = pooled_client(
                base_url=self._base_url,
                auth=httpx.BasicAuth(self._account_sid, self._auth_token),
                timeout=self._timeout,
                headers={"Accept": "application/json"},
            )
        return self._http

    async def close(self) -> None:
        """Close the shared connection pool. The client reopens one lazily if used again."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _request(
        self, method: str, path: str, *, form: Form | None = None, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        url = f"{_API}/{self._account_sid}/{path}"
        try:
            response = await self._client().request(method, url, data=form, params=query)
        except httpx.TransportError as exc:
            raise PatterConnectionError(
                f"Twilio {method} {path} failed: {type(exc).__name__}: {exc}"
            ) from None
        if response.is_success:
            if not response.content:
                return {}
            try:
                body = response.json()
            except ValueError:
                raise PatterConnectionError(f"Twilio {method} {path} returned a non-JSON body") from None
            if not isinstance(body, dict):
                raise PatterConnectionError(f"Twilio {method} {path} returned an unexpected body")
            return body
        code, message = _error_detail(response)
        text = f"Twilio {method} {path} refused: HTTP {response.status_code}, code {code}: {message}"
        status = response.status_code
        raise error_for_status(
            status,
            text,
            response.headers,
            refused=lambda message: TwilioApiError(message, status=status, twilio_code=code),
        )

    # ---- calls ---------------------------------------------------------------------------------------

    async def create_call(
        self,
        to: str,
        from_: str,
        *,
        twiml: str | None = None,
        url: str | None = None,
        status_callback: str | None = None,
        status_callback_event: list[str] | tuple[str, ...] | None = None,
        timeout: int | float | None = None,
        machine_detection: str | None = None,
        async_amd: bool | None = None,
        async_amd_status_callback: str | None = None,
        record: bool | None = None,
    ) -> dict[str, Any]:
        """Place an outbound call (201 with the Call resource, ``status`` usually ``queued``).

        Exactly one of ``twiml`` / ``url`` says what the call runs. Callbacks are requested with POST.
        ``machine_detection`` is ``"Enable"`` or ``"DetectMessageEnd"``.
        """
        if (twiml is None) == (url is None):
            raise ValueError("create_call needs exactly one of twiml= or url=")
        form: Form = {"To": to, "From": from_}
        if twiml is not None:
            form["Twiml"] = twiml
        if url is not None:
            form["Url"] = url
            form["Method"] = "POST"
        if status_callback is not None:
            form["StatusCallback"] = status_callback
            form["StatusCallbackMethod"] = "POST"
        if status_callback_event:
            form["StatusCallbackEvent"] = list(status_callback_event)
        if timeout is not None:
            form["Timeout"] = str(int(timeout))
        if machine_detection is not None:
            form["MachineDetection"] = machine_detection
        if async_amd is not None:
            form["AsyncAmd"] = _bool(async_amd)
        if async_amd_status_callback is not None:
            form["AsyncAmdStatusCallback"] = async_amd_status_callback
            form["AsyncAmdStatusCallbackMethod"] = "POST"
        if record is not None:
            form["Record"] = _bool(record)
        return await self._request("POST", "Calls.json", form=form)

    async def fetch_call(self, sid: str) -> dict[str, Any]:
        """The Call resource (eventually consistent: prefer status callbacks for live state)."""
        return await self._request("GET", f"Calls/{_safe_sid(sid, 'call SID')}.json")

    async def update_call(
        self, sid: str, *, twiml: str | None = None, url: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        """Redirect a live call (new ``twiml`` or ``url``; this ends its media stream) or set ``status``
        (``completed`` hangs up a live call, ``canceled`` a queued or ringing one)."""
        if twiml is not None and url is not None:
            raise ValueError("update_call takes twiml= or url=, not both")
        form: Form = {}
        if twiml is not None:
            form["Twiml"] = twiml
        if url is not None:
            form["Url"] = url
            form["Method"] = "POST"
        if status is not None:
            form["Status"] = status
        if not form:
            raise ValueError("update_call needs twiml=, url= or status=")
        return await self._request("POST", f"Calls/{_safe_sid(sid, 'call SID')}.json", form=form)

    async def hangup(self, sid: str) -> dict[str, Any]:
        """End a live call (``Status=completed``). Raises if the call is unknown or already over."""
        return await self.update_call(sid, status="completed")

    async def start_recording(self, call_sid: str, status_callback: str | None = None) -> dict[str, Any]:
        """Start recording a live call (201 with the Recording resource, ``sid`` ``RE…``)."""
        form: Form = {}
        if status_callback is not None:
            form["RecordingStatusCallback"] = status_callback
            form["RecordingStatusCallbackMethod"] = "POST"
        path = f"Calls/{_safe_sid(call_sid, 'call SID')}/Recordings.json"
        return await self._request("POST", path, form=form)

    # ---- numbers -------------------------------------------------------------------------------------

    async def find_number(self, phone_number: str) -> dict[str, Any] | None:
        """The IncomingPhoneNumber resource whose ``phone_number`` is exactly ``phone_number``, or None."""
        body = await self._request("GET", "IncomingPhoneNumbers.json", query={"PhoneNumber": phone_number})
        numbers = body.get("incoming_phone_numbers")
        if not isinstance(numbers, list):
            raise PatterConnectionError("Twilio IncomingPhoneNumbers list lacks 'incoming_phone_numbers'")
        for number in numbers:
            # The filter may match partially; only an exact match counts.
            if isinstance(number, dict) and number.get("phone_number") == phone_number:
                return number
        return None

    async def configure_number(
        self, phone_number: str, voice_url: str, status_callback: str | None = None
    ) -> bool:
        """Point ``phone_number``'s voice webhook at ``voice_url`` (POST). ``False`` if the number is not
        on this account; API refusals raise."""
        number = await self.find_number(phone_number)
        if number is None:
            return False
        sid = number.get("sid")
        if not isinstance(sid, str):
            raise PatterConnectionError("Twilio IncomingPhoneNumber resource lacks 'sid'")
        form: Form = {"VoiceUrl": voice_url, "VoiceMethod": "POST"}
        if status_callback is not None:
            form["StatusCallback"] = status_callback
            form["StatusCallbackMethod"] = "POST"
        await self._request(
            "POST", f"IncomingPhoneNumbers/{_safe_sid(sid, 'phone number SID')}.json", form=form
        )
        return True


def _call_gone(exc: TwilioApiError) -> bool:
    return exc.status == 404 or exc.twilio_code in _CALL_GONE_CODES


class TwilioCallControl(CarrierControl):
    """REST control of one live call. ``hangup`` is idempotent: a call that is already over is fine."""

    def __init__(
        self, client: TwilioRestClient, call_sid: str, *, recording_status_callback: str | None = None
    ) -> None:
        self._client = client
        self.call_sid = _safe_sid(call_sid, "call SID")
        self._recording_status_callback = recording_status_callback

    def __repr__(self) -> str:
        return f"TwilioCallControl(call_sid={self.call_sid!r})"

    async def hangup(self) -> None:
        try:
            await self._client.hangup(self.call_sid)
        except TwilioApiError as exc:
            if not _call_gone(exc):
                raise

    async def transfer(self, number: str) -> None:
        """Cold transfer to an E.164 ``number`` with ``<Dial>``; Twilio then ends the media stream."""
        if not _E164.match(number):
            raise ValueError(f"transfer target must be an E.164 number like +14155550100, got {number!r}")
        await self._client.update_call(self.call_sid, twiml=_dial_twiml(number))

    async def say_and_hangup(self, text: str) -> None:
        """Replace the call's TwiML with ``<Say>`` + ``<Hangup/>`` (the media stream stops)."""
        try:
            await self._client.update_call(self.call_sid, twiml=say_and_hangup_twiml(text))
        except TwilioApiError as exc:
            if not _call_gone(exc):
                raise

    async def start_recording(self) -> dict[str, Any]:
        """Start recording this call; returns the Recording resource."""
        return await self._client.start_recording(self.call_sid, self._recording_status_callback)
