"""Fake Twilio for tests: ``FakeTwilio`` = strict REST API + the carrier side of calls (twilio.md §1-§6).

Import everything from here. Split over three modules:

* ``tests/fakes/twilio_rest.py``: ``FakeTwilioRest``, the REST routes on ``fake.app`` (see its docstring),
  request recording (``fake.requests``) and fault injection (``fake.inject_error``).
* this module: ``FakeTwilio(FakeTwilioRest)`` adds what Twilio does *to* the product: signed webhooks
  (``post_webhook``, ``post_voice_webhook``, ``send_status_callback``), ringing the product
  (``start_inbound_call``), answering an outbound call (``answer_call``), and the media WebSocket.
* ``tests/fakes/twilio_media.py``: ``FakeCall``, one call's media stream: caller actions, the playback-buffer
  model, recordings of what the server sent, waits.

Typical whole-call test::

    fake = FakeTwilio()
    async with running(fake.app) as rest, running(product_app) as srv:
        # product configured with TwilioRestClient(fake.account_sid, fake.auth_token, base_url=rest.http_url)
        # and public host "agent.example.test" (what a tunnel would expose)
        call = await fake.start_inbound_call(srv.http_url, "agent.example.test")
        await call.say_tone(600)
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=400)
        await call.hangup()
        await fake.aclose()

Webhooks are signed with ``X-Twilio-Signature`` over ``https://{public_host}{path}`` (the URL Twilio was
configured with) while the bytes go to the local server, and the ``<Stream url="wss://{public_host}/...">``
is dialled as ``ws://{server host:port}/...`` with the signature of the ``wss://`` URL: what a tunnel does.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from tests.fakes._patience import patient
from tests.fakes.twilio_media import (
    FRAME_BYTES,
    MULAW_SILENCE,
    EchoedMark,
    FakeCall,
    Received,
    pcm16_16k_to_mulaw_8k,
    tone_pcm16_16k,
)
from tests.fakes.twilio_rest import (
    _DATE,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilioError,
    FakeTwilioRest,
    RecordedRequest,
    new_sid,
    twilio_signature,
)

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "FRAME_BYTES",
    "MULAW_SILENCE",
    "VOICE_PATH",
    "EchoedMark",
    "FakeCall",
    "FakeTwilio",
    "FakeTwilioError",
    "FakeTwilioRest",
    "Received",
    "RecordedRequest",
    "new_sid",
    "parse_connect_stream",
    "pcm16_16k_to_mulaw_8k",
    "tone_pcm16_16k",
    "twilio_signature",
]

VOICE_PATH = "/webhooks/twilio/voice"


def parse_connect_stream(twiml: str) -> tuple[str, dict[str, str], str | None]:
    """``(stream url, parameters, statusCallback)`` of a ``<Response><Connect><Stream>`` document.

    Raises ``FakeTwilioError`` for anything Twilio would refuse: malformed XML, another root, no
    ``<Connect><Stream>``, a non-``wss://`` URL, a query string, a ``<Parameter>`` without name/value.
    """
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise FakeTwilioError(f"TwiML is not well-formed XML: {exc}: {twiml[:300]!r}") from None
    if root.tag != "Response":
        raise FakeTwilioError(f"TwiML root must be <Response>, got <{root.tag}>")
    stream = root.find("Connect/Stream")
    if stream is None:
        raise FakeTwilioError(f"TwiML has no <Connect><Stream>: {twiml[:300]!r}")
    url = stream.get("url")
    if not url or not url.startswith("wss://"):
        raise FakeTwilioError(f"<Stream url> must be an absolute wss:// URL, got {url!r}")
    if "?" in url:
        raise FakeTwilioError(f"<Stream url> must not carry a query string (Twilio error 31920): {url!r}")
    params: dict[str, str] = {}
    for param in stream.findall("Parameter"):
        name, value = param.get("name"), param.get("value")
        if name is None or value is None:
            raise FakeTwilioError("<Parameter> needs both name and value attributes")
        params[name] = value
    return url, params, stream.get("statusCallback")


def parse_reject(twiml: str) -> str | None:
    """The ``reason`` of a document whose *first* verb is ``<Reject>`` (Twilio then never answers the
    call; twilio.md §2.2), or ``None`` when it does not start with one. Raises ``FakeTwilioError`` for a
    ``<Reject>`` Twilio would refuse: an unknown reason, nested verbs, or a verb before it."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return None  # parse_connect_stream reports malformed documents
    if root.tag != "Response":
        return None
    verbs = list(root)
    rejects = [i for i, verb in enumerate(verbs) if verb.tag == "Reject"]
    if not rejects:
        return None
    if rejects[0] != 0:
        raise FakeTwilioError("<Reject> only refuses a call as the first verb; here the call is answered")
    reject = verbs[0]
    if len(reject):
        raise FakeTwilioError("<Reject> cannot nest other verbs")
    reason = reject.get("reason", "rejected")
    if reason not in ("rejected", "busy"):
        raise FakeTwilioError(f"<Reject reason> must be 'rejected' or 'busy', got {reason!r}")
    return reason


class FakeTwilio(FakeTwilioRest):
    """A strict fake Twilio account: REST API on ``.app`` plus the carrier side of calls.

    Construct with ``FakeTwilio(account_sid="AC" + 32 hex, auth_token=..., owned_numbers=(...))``; ``From``
    of an outbound call must be one of ``owned_numbers`` (else 400/21210, as for an unverified caller ID).
    Every call, inbound or outbound, is in ``fake.calls`` (sid -> ``FakeCall``). Always ``await
    fake.aclose()`` at the end of a test.
    """

    _http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            # Idle connections are dropped after 1 s, well inside the server's 5 s keep-alive: a webhook
            # is never written onto a connection the server is closing (that race is the product's to
            # survive, tested in test_stale_connections, not the fake carrier's).
            self._http = httpx.AsyncClient(timeout=patient(10.0), limits=httpx.Limits(keepalive_expiry=1.0))
        return self._http

    async def post_webhook(
        self,
        server_http_url: str,
        public_host: str,
        path: str,
        form: Mapping[str, str],
        *,
        sign: bool = True,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST ``form`` as Twilio does to ``server_http_url + path``, signed over
        ``https://{public_host}{path}``. ``signature`` overrides the header (forgery tests); ``sign=False``
        omits it."""
        headers = {
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        elif sign:
            headers["X-Twilio-Signature"] = twilio_signature(
                self.auth_token, f"https://{public_host}{path}", form.items()
            )
        response = await self._client().post(
            server_http_url.rstrip("/") + path, data=dict(form), headers=headers
        )
        self.webhooks.append(response)
        return response

    def voice_form(
        self, *, call_sid: str, from_: str, to: str, direction: str = "inbound", status: str = "ringing"
    ) -> dict[str, str]:
        """The voice-webhook form fields Twilio sends for a call."""
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": status,
            "Called": to,
            "Caller": from_,
            "Direction": direction,
            "From": from_,
            "To": to,
        }

    async def post_voice_webhook(
        self,
        server_http_url: str,
        public_host: str,
        *,
        sign: bool = True,
        signature: str | None = None,
        form: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST the inbound voice webhook (``/webhooks/twilio/voice``) and return the raw response.

        ``form`` defaults to a fresh inbound call from +15550001111 to +15550002222.
        """
        if form is None:
            form = self.voice_form(call_sid=new_sid("CA"), from_="+15550001111", to="+15550002222")
        return await self.post_webhook(
            server_http_url, public_host, VOICE_PATH, form, sign=sign, signature=signature
        )

    async def stream_params(
        self,
        server_http_url: str,
        public_host: str,
        call_sid: str,
        *,
        from_: str = "+15550001111",
        to: str = "+15550002222",
    ) -> dict[str, str]:
        """Ring the product for ``call_sid`` (signed voice webhook) and return its ``<Parameter>``s, which
        Twilio echoes in ``start.customParameters`` (the signed stream token among them). For tests that
        drive the media socket frame by frame."""
        form = self.voice_form(call_sid=call_sid, from_=from_, to=to)
        response = await self.post_voice_webhook(server_http_url, public_host, form=form)
        if response.status_code != 200:
            raise FakeTwilioError(
                f"voice webhook answered HTTP {response.status_code}: {response.text[:200]!r}"
            )
        return parse_connect_stream(response.text)[1]

    async def start_inbound_call(
        self,
        server_http_url: str,
        public_host: str,
        *,
        from_: str = "+15550001111",
        to: str = "+15550002222",
        call_sid: str | None = None,
    ) -> FakeCall:
        """Ring the product: signed voice webhook, then ``<Connect><Stream>`` media stream; returns the live
        ``FakeCall`` (``connected`` and ``start`` already sent, pacer running).

        Raises ``FakeTwilioError`` if the webhook does not answer 200 with ``<Connect><Stream>`` TwiML, or
        if the WebSocket handshake is refused. A ``<Reject>`` answer returns the call unconnected, with
        ``rejected`` set to its reason and the status Twilio gives it (``busy`` / ``no-answer``).
        """
        call = FakeCall(
            sid=call_sid or new_sid("CA"),
            account_sid=self.account_sid,
            from_=from_,
            to=to,
            direction="inbound",
            status="ringing",
        )
        self.calls[call.sid] = call
        form = self.voice_form(call_sid=call.sid, from_=from_, to=to)
        response = await self.post_voice_webhook(server_http_url, public_host, form=form)
        if response.status_code != 200:
            call.status = "failed"
            raise FakeTwilioError(
                f"voice webhook answered HTTP {response.status_code}, not 200: {response.text[:300]!r}"
            )
        ctype = response.headers.get("content-type", "")
        if not any(t in ctype for t in ("text/xml", "application/xml", "text/html")):
            call.status = "failed"
            raise FakeTwilioError(f"voice webhook answered content-type {ctype!r}, not TwiML XML")
        call.twiml = response.text
        reason = parse_reject(response.text)
        if reason is not None:
            # Never answered, not billed: the caller hears busy (or "not in service") and the call ends.
            call.rejected = reason
            call.status = "busy" if reason == "busy" else "no-answer"
            return call
        await self._connect(call, server_http_url, public_host, response.text)
        return call

    async def answer_call(self, call_sid: str, server_http_url: str, public_host: str) -> FakeCall:
        """The callee of an outbound call (created through ``Calls.json``) picks up.

        With ``Twiml`` at create, that TwiML runs; with ``Url``, the signed voice webhook is POSTed to it
        (``Direction=outbound-api``, ``CallStatus=in-progress``; its ``https://{public_host}`` is routed to
        ``server_http_url``). Either way it must answer ``<Connect><Stream>``.
        """
        call = self.calls[call_sid]
        if call.status not in ("queued", "ringing"):
            raise FakeTwilioError(f"call {call_sid} is {call.status}, it cannot be answered")
        twiml = call.twiml
        if twiml is None:
            url = self._one(call.create_form, "Url")
            if url is None:
                raise FakeTwilioError(f"call {call_sid} has neither Twiml nor Url")
            parts = urlsplit(url)
            if parts.netloc != public_host:
                raise FakeTwilioError(f"call Url {url!r} is not on the public host {public_host!r}")
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            form = self.voice_form(
                call_sid=call.sid,
                from_=call.from_,
                to=call.to,
                direction="outbound-api",
                status="in-progress",
            )
            response = await self.post_webhook(server_http_url, public_host, path, form)
            if response.status_code != 200:
                raise FakeTwilioError(
                    f"call Url answered HTTP {response.status_code}: {response.text[:300]!r}"
                )
            twiml = call.twiml = response.text
        await self._connect(call, server_http_url, public_host, twiml)
        return call

    async def _connect(self, call: FakeCall, server_http_url: str, public_host: str, twiml: str) -> None:
        stream_url, params, _ = parse_connect_stream(twiml)
        parts = urlsplit(stream_url)
        if parts.netloc != public_host:
            raise FakeTwilioError(f"<Stream url> {stream_url!r} is not on the public host {public_host!r}")
        local = "ws://" + urlsplit(server_http_url).netloc + parts.path
        headers = {
            "X-Twilio-Signature": twilio_signature(self.auth_token, stream_url),
            "User-Agent": "Twilio",
        }
        try:
            ws = await connect(
                local, additional_headers=headers, open_timeout=15, close_timeout=2, max_size=16 * 1024 * 1024
            )
        except InvalidStatus as exc:
            call.status = "failed"
            raise FakeTwilioError(
                f"media WebSocket {local} refused: HTTP {exc.response.status_code}"
            ) from None
        except (OSError, WebSocketException) as exc:
            call.status = "failed"
            raise FakeTwilioError(f"media WebSocket {local} failed: {exc!r}") from None
        call.stream_url = stream_url
        await call._attach(ws, new_sid("MZ"), params)

    async def send_status_callback(
        self,
        call_sid: str,
        server_http_url: str,
        public_host: str,
        call_status: str,
        *,
        sequence_number: int = 0,
        path: str = "/webhooks/twilio/status",
        extra: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST a signed call-progress status callback (``CallStatus``, ``SequenceNumber``, ...)."""
        call = self.calls[call_sid]
        form = self.voice_form(
            call_sid=call.sid, from_=call.from_, to=call.to, direction=call.direction, status=call_status
        )
        form.update(
            {
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(sequence_number),
                "Timestamp": _DATE,
            }
        )
        form.update(extra or {})
        return await self.post_webhook(server_http_url, public_host, path, form)

    async def aclose(self) -> None:
        """Close every live stream, finish background work and close the webhook HTTP client."""
        await super().aclose()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
