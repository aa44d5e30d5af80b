"""Telnyx Call Control v2 over REST (telnyx.md §1-§2), and live-call control for the call layer.

One lazily-created ``httpx.AsyncClient`` per client object, ``Authorization: Bearer`` and JSON bodies.
Commands are ``POST /calls/{call_control_id}/actions/<name>``; the id is an opaque token (``v3:...``)
and always goes into the path percent-encoded. Refusals map to the SDK's errors with Telnyx's error code
and title; the API key never appears in a message, a log line or a ``repr``.

Media streams are always requested **bidirectional in RTP mode** with the same codec both ways: without
``stream_bidirectional_mode=rtp`` Telnyx plays back only whole MP3 files, and raw frames are silence.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from getpatter._http_status import error_for_status
from getpatter._pool import pooled_client
from getpatter.carriers.base import CarrierControl
from getpatter.errors import (
    ErrorCode,
    PatterConnectionError,
    PatterError,
)

__all__ = [
    "CALL_GONE_CODE",
    "DEFAULT_BASE_URL",
    "REJECT_CAUSES",
    "STREAM_SAMPLE_RATES",
    "TelnyxApiError",
    "TelnyxCallControl",
    "TelnyxRestClient",
    "resolve_base_url",
    "stream_params",
]

DEFAULT_BASE_URL = "https://api.telnyx.com/v2"
#: Telnyx's error code for a command on a call that has already ended (a string, as Telnyx sends it).
CALL_GONE_CODE = "90018"
#: Codecs getpatter can carry on the media socket -> their sample rate there (telnyx.md §5.3).
STREAM_SAMPLE_RATES: dict[str, int] = {"L16": 16000, "PCMU": 8000, "PCMA": 8000}
#: ``actions/reject`` causes (telnyx-python ``ActionRejectParams``) and the SIP answer each gives.
REJECT_CAUSES = frozenset({"USER_BUSY", "CALL_REJECTED", "NOT_FOUND", "TEMPORARILY_UNAVAILABLE"})
_TRACKS = frozenset({"inbound_track", "outbound_track", "both_tracks"})
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_DTMF = re.compile(r"^[0-9A-D*#wW]{1,64}$")
_AMD = frozenset({"premium", "detect", "detect_beep", "detect_words", "greeting_end", "disabled"})


class TelnyxApiError(PatterError):
    """Telnyx refused a command for a reason other than auth, rate or availability (422 validation,
    404 unknown call). ``status`` is the HTTP status, ``telnyx_codes`` the ``errors[].code`` strings."""

    default_code = ErrorCode.PROVIDER_ERROR

    def __init__(self, message: str, *, status: int, telnyx_codes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.status = status
        self.telnyx_codes = telnyx_codes

    @property
    def call_gone(self) -> bool:
        """The call is over (or unknown): a hang-up on it has nothing left to do."""
        return self.status == 404 or CALL_GONE_CODE in self.telnyx_codes


def resolve_base_url(config: object = None) -> str:
    """The API root for a ``Telnyx`` config: its ``base_url`` if it has one, else env ``TELNYX_BASE_URL``
    (the official SDK's override, used to point at a fake or a proxy), else :data:`DEFAULT_BASE_URL`."""
    configured = getattr(config, "base_url", "")
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    return os.environ.get("TELNYX_BASE_URL", "").strip() or DEFAULT_BASE_URL


def _path_id(call_control_id: str) -> str:
    if not isinstance(call_control_id, str) or not call_control_id or len(call_control_id) > 512:
        raise ValueError("call_control_id must be a non-empty string")
    return quote(call_control_id, safe="")


def _check_client_state(client_state: str | None) -> None:
    """Telnyx requires ``client_state`` to be base64; refuse locally rather than get a 422 mid-call."""
    if client_state is None:
        return
    try:
        base64.b64decode(client_state, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("client_state must be base64 text (Telnyx echoes it back verbatim)") from None


def stream_params(
    stream_url: str, *, stream_track: str = "inbound_track", stream_codec: str = "L16"
) -> dict[str, Any]:
    """The streaming fields shared by ``dial``, ``answer`` and ``streaming_start`` (telnyx.md §2.1).

    Telnyx sends ``stream_codec`` and plays back what we send in the same codec and rate, in RTP mode.
    ``stream_bidirectional_sampling_rate`` is stated explicitly so L16 is not played as 8 kHz audio.
    """
    if not isinstance(stream_url, str) or not stream_url.startswith("wss://"):
        raise ValueError(f"Telnyx stream_url must be an absolute wss:// URL, got {stream_url!r}")
    if stream_track not in _TRACKS:
        raise ValueError(f"stream_track must be one of {sorted(_TRACKS)}, got {stream_track!r}")
    rate = STREAM_SAMPLE_RATES.get(stream_codec)
    if rate is None:
        raise ValueError(f"stream_codec must be one of {sorted(STREAM_SAMPLE_RATES)}, got {stream_codec!r}")
    return {
        "stream_url": stream_url,
        "stream_track": stream_track,
        "stream_codec": stream_codec,
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": stream_codec,
        "stream_bidirectional_sampling_rate": rate,
    }


def _error_detail(response: httpx.Response) -> tuple[tuple[str, ...], str]:
    """Every ``errors[].code`` and the first error's title/detail."""
    try:
        body = response.json()
    except ValueError:
        return (), response.reason_phrase or "no error body"
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        return (), response.reason_phrase or "unexpected error body"
    codes = tuple(str(e["code"]) for e in errors if isinstance(e, dict) and e.get("code") is not None)
    first = errors[0] if isinstance(errors[0], dict) else {}
    title, detail = first.get("title"), first.get("detail")
    message = ": ".join(str(part) for part in (title, detail) if part) or response.reason_phrase
    return codes, str(message)[:500]


class TelnyxRestClient:
    """Async Call Control client for one API key. Use ``base_url`` to point it at a fake or a proxy."""

    def __init__(self, api_key: str, *, base_url: str = DEFAULT_BASE_URL, timeout: float = 15.0) -> None:
        if not api_key:
            raise ValueError("TelnyxRestClient needs an api_key")
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"TelnyxRestClient(base_url={self._base_url!r})"

    def _client(self) -> httpx.AsyncClient:
        if self._http is None or self._http.is_closed:
            self._http = pooled_client(
                base_url=self._base_url,
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
            )
        return self._http

    async def close(self) -> None:
        """Close the shared connection pool. The client reopens one lazily if used again."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data = await self._data(method, path, body)
        if not isinstance(data, dict):
            raise PatterConnectionError(f"Telnyx {method} {path} returned a body without a 'data' object")
        return data

    async def _data(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """The response's ``data`` member ({} for an empty 2xx body); raises the mapped error otherwise."""
        try:
            response = await self._client().request(
                method, path, json=dict(body) if body is not None else None, params=params
            )
        except httpx.TransportError as exc:
            raise PatterConnectionError(
                f"Telnyx {method} {path} failed: {type(exc).__name__}: {exc}"
            ) from None
        if response.is_success:
            if not response.content:
                return {}
            try:
                parsed = response.json()
            except ValueError:
                raise PatterConnectionError(f"Telnyx {method} {path} returned a non-JSON body") from None
            return parsed.get("data") if isinstance(parsed, dict) else None
        codes, message = _error_detail(response)
        code_text = ",".join(codes) or "none"
        text = f"Telnyx {method} {path} refused: HTTP {response.status_code}, code {code_text}: {message}"
        status = response.status_code
        raise error_for_status(
            status,
            text,
            response.headers,
            refused=lambda message: TelnyxApiError(message, status=status, telnyx_codes=codes),
        )

    async def find_number(self, phone_number: str) -> dict[str, Any] | None:
        """The account's number resource for ``phone_number`` (``id``, ``connection_id``, ...), or None."""
        data = await self._data("GET", "/phone_numbers", params={"filter[phone_number]": phone_number})
        matches = [n for n in data or () if isinstance(n, dict) and n.get("phone_number") == phone_number]
        return matches[0] if matches else None

    async def assign_number(self, number_id: str, connection_id: str) -> dict[str, Any]:
        """Route a number's calls to the Call Control application ``connection_id`` (telnyx.md §2)."""
        return await self._request(
            "PATCH", f"/phone_numbers/{quote(number_id, safe='')}", {"connection_id": connection_id}
        )

    async def set_webhook_url(self, connection_id: str, webhook_event_url: str) -> dict[str, Any]:
        """Point the Call Control application's webhooks (API v2) at ``webhook_event_url``."""
        return await self._request(
            "PATCH",
            f"/call_control_applications/{quote(connection_id, safe='')}",
            {"webhook_event_url": webhook_event_url, "webhook_api_version": "2"},
        )

    async def _action(
        self,
        call_control_id: str,
        action: str,
        body: dict[str, Any],
        *,
        client_state: str | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        _check_client_state(client_state)
        if client_state is not None:
            body["client_state"] = client_state
        if command_id is not None:
            body["command_id"] = command_id
        return await self._request("POST", f"/calls/{_path_id(call_control_id)}/actions/{action}", body)

    # ---- calls ---------------------------------------------------------------------------------------

    async def dial(
        self,
        to: str,
        from_: str,
        *,
        connection_id: str,
        stream_url: str | None = None,
        stream_track: str = "inbound_track",
        stream_codec: str = "L16",
        timeout_secs: int | None = None,
        answering_machine_detection: str | None = None,
        webhook_url: str | None = None,
        client_state: str | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """``POST /calls``: place an outbound call; returns ``data`` (``call_control_id``, ...).

        Dialing is asynchronous: the answer (or not) arrives as webhooks. With ``stream_url`` the media
        stream is requested up front, in the same bidirectional form as on ``answer``.
        """
        for what, number in (("to", to), ("from_", from_)):
            if not _E164.match(number):
                raise ValueError(f"{what} must be an E.164 number like +14155550100, got {number!r}")
        if not connection_id:
            raise ValueError("dial needs the Call Control application's connection_id")
        body: dict[str, Any] = {"connection_id": connection_id, "to": to, "from": from_}
        if stream_url is not None:
            body.update(stream_params(stream_url, stream_track=stream_track, stream_codec=stream_codec))
        if timeout_secs is not None:
            if not 5 <= int(timeout_secs) <= 600:
                raise ValueError(f"timeout_secs must be 5-600, got {timeout_secs}")
            body["timeout_secs"] = int(timeout_secs)
        if answering_machine_detection is not None:
            if answering_machine_detection not in _AMD:
                raise ValueError(f"answering_machine_detection must be one of {sorted(_AMD)}")
            body["answering_machine_detection"] = answering_machine_detection
        if webhook_url is not None:
            body["webhook_url"] = webhook_url
        _check_client_state(client_state)
        if client_state is not None:
            body["client_state"] = client_state
        if command_id is not None:
            body["command_id"] = command_id
        return await self._request("POST", "/calls", body)

    async def answer(
        self,
        call_control_id: str,
        *,
        stream_url: str,
        stream_track: str = "inbound_track",
        stream_codec: str = "L16",
        client_state: str | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Answer a parked inbound call and open its bidirectional media stream to ``stream_url``."""
        body = stream_params(stream_url, stream_track=stream_track, stream_codec=stream_codec)
        return await self._action(
            call_control_id, "answer", body, client_state=client_state, command_id=command_id
        )

    async def streaming_start(
        self,
        call_control_id: str,
        *,
        stream_url: str,
        stream_track: str = "inbound_track",
        stream_codec: str = "L16",
        custom_parameters: Mapping[str, str] | None = None,
        client_state: str | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Open the media stream on an answered call; ``custom_parameters`` arrive in the WS ``start``."""
        body = stream_params(stream_url, stream_track=stream_track, stream_codec=stream_codec)
        if custom_parameters:
            body["custom_parameters"] = [{"name": k, "value": v} for k, v in custom_parameters.items()]
        return await self._action(
            call_control_id, "streaming_start", body, client_state=client_state, command_id=command_id
        )

    async def streaming_stop(self, call_control_id: str, *, stream_id: str | None = None) -> dict[str, Any]:
        """Stop the call's media stream (``stream_id`` one, or every stream when omitted)."""
        body: dict[str, Any] = {} if stream_id is None else {"stream_id": stream_id}
        return await self._action(call_control_id, "streaming_stop", body)

    async def speak(
        self, call_control_id: str, text: str, *, voice: str = "Polly.Joanna", language: str | None = None
    ) -> dict[str, Any]:
        """Speak ``text`` with Telnyx's own TTS (voicemail drops, apologies when our audio path is gone)."""
        body: dict[str, Any] = {"payload": text[:3000], "payload_type": "text", "voice": voice}
        if language:
            body["language"] = language
        return await self._action(call_control_id, "speak", body)

    async def reject(
        self, call_control_id: str, *, cause: str = "USER_BUSY", command_id: str | None = None
    ) -> dict[str, Any]:
        """Refuse a parked inbound call without answering it (``actions/reject``). ``cause`` sets the SIP
        response the caller gets: ``USER_BUSY`` 486, ``CALL_REJECTED`` 603, ``NOT_FOUND`` 404,
        ``TEMPORARILY_UNAVAILABLE`` 480. Telnyx then reports ``call.hangup``."""
        if cause not in REJECT_CAUSES:
            raise ValueError(f"reject cause must be one of {sorted(REJECT_CAUSES)}, got {cause!r}")
        return await self._action(call_control_id, "reject", {"cause": cause}, command_id=command_id)

    async def hangup(self, call_control_id: str, *, command_id: str | None = None) -> dict[str, Any]:
        """End the call. Raises ``TelnyxApiError`` (``call_gone``) if it is already over."""
        return await self._action(call_control_id, "hangup", {}, command_id=command_id)

    async def transfer(
        self,
        call_control_id: str,
        to: str,
        *,
        from_: str | None = None,
        timeout_secs: int | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Cold-transfer the call to ``to`` (E.164 or a SIP URI); ``from_`` defaults to the call's ``to``."""
        if not (_E164.match(to) or to.startswith(("sip:", "sips:"))):
            raise ValueError(f"transfer target must be E.164 (+14155550100) or a SIP URI, got {to!r}")
        body: dict[str, Any] = {"to": to}
        if from_ is not None:
            body["from"] = from_
        if timeout_secs is not None:
            body["timeout_secs"] = int(timeout_secs)
        return await self._action(call_control_id, "transfer", body, command_id=command_id)

    async def record_start(
        self,
        call_control_id: str,
        *,
        format: str = "wav",
        channels: str = "single",
        play_beep: bool | None = None,
        max_length: int | None = None,
    ) -> dict[str, Any]:
        """Start recording; ``call.recording.saved`` (with the URLs) arrives when it stops."""
        if format not in ("wav", "mp3"):
            raise ValueError(f"format must be 'wav' or 'mp3', got {format!r}")
        if channels not in ("single", "dual"):
            raise ValueError(f"channels must be 'single' or 'dual', got {channels!r}")
        body: dict[str, Any] = {"format": format, "channels": channels}
        if play_beep is not None:
            body["play_beep"] = play_beep
        if max_length is not None:
            if not 0 <= max_length <= 14400:
                raise ValueError(f"max_length must be 0-14400 seconds, got {max_length}")
            body["max_length"] = max_length
        return await self._action(call_control_id, "record_start", body)

    async def record_stop(self, call_control_id: str, *, recording_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {} if recording_id is None else {"recording_id": recording_id}
        return await self._action(call_control_id, "record_stop", body)

    async def send_dtmf(
        self, call_control_id: str, digits: str, *, duration_millis: int | None = None
    ) -> dict[str, Any]:
        """Play DTMF ``digits`` (``0-9 A-D * #``; ``w``/``W`` pause 0.5 s/1 s) to the call."""
        if not _DTMF.match(digits):
            raise ValueError(f"digits may hold only 0-9, A-D, *, #, w, W (got {digits[:70]!r})")
        body: dict[str, Any] = {"digits": digits}
        if duration_millis is not None:
            if not 100 <= duration_millis <= 500:
                raise ValueError(f"duration_millis must be 100-500, got {duration_millis}")
            body["duration_millis"] = duration_millis
        return await self._action(call_control_id, "send_dtmf", body)


class TelnyxCallControl(CarrierControl):
    """REST control of one live call. ``hangup`` is idempotent: a call that is already over is fine."""

    def __init__(self, client: TelnyxRestClient, call_control_id: str) -> None:
        _path_id(call_control_id)
        self._client = client
        self.call_control_id = call_control_id

    def __repr__(self) -> str:
        return f"TelnyxCallControl(call_control_id={self.call_control_id!r})"

    async def hangup(self) -> None:
        try:
            await self._client.hangup(self.call_control_id)
        except TelnyxApiError as exc:
            if not exc.call_gone:
                raise

    async def transfer(self, number: str) -> None:
        """Cold transfer to an E.164 ``number``; Telnyx bridges the new leg and our stream ends."""
        if not _E164.match(number):
            raise ValueError(f"transfer target must be an E.164 number like +14155550100, got {number!r}")
        await self._client.transfer(self.call_control_id, number)

    async def send_dtmf(self, digits: str, delay_ms: int = 300) -> None:
        """Play ``digits`` to the caller; ``delay_ms`` is each tone's length, clamped to Telnyx's 100-500."""
        await self._client.send_dtmf(
            self.call_control_id, digits, duration_millis=max(100, min(500, delay_ms))
        )

    async def start_recording(self) -> dict[str, Any]:
        return await self._client.record_start(self.call_control_id)

    async def stop_recording(self) -> dict[str, Any]:
        return await self._client.record_stop(self.call_control_id)
