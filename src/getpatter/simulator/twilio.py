"""``PhoneSimulator``: dials a getpatter server the way Twilio does, and answers its REST calls.

It posts the signed voice webhook, follows the ``<Connect><Stream>`` TwiML to the media WebSocket (on the
server's real address, while signatures use the public host — what a tunnel does), and serves the small
part of Twilio's REST API a server uses on a live call (hang up, transfer, ``<Say>``), so a whole call
runs on 127.0.0.1 with no account.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qsl, urlparse
from xml.etree import ElementTree

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import connect

from getpatter.carriers.twilio.signature import compute_signature
from getpatter.simulator.call import SimulatedCall


class CallRejected(RuntimeError):
    """The server answered the ringing call with TwiML ``<Reject>``, as a server at its call cap does
    (``max_concurrent_calls``, loop lag): Twilio's caller hears ``reason`` (``busy`` or ``rejected``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the server rejected the call (<Reject reason={reason!r}/>)")
        self.reason = reason


class PhoneSimulator:
    """One simulated Twilio account. Serve ``rest_app`` and pass its URL as ``Twilio(base_url=...)``."""

    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.calls: dict[str, SimulatedCall] = {}
        self.transfers: dict[str, str] = {}  # call sid -> number dialled
        self.rest_app = Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{account}/Calls/{sid}.json", self._update_call, methods=["POST"])
            ]
        )

    async def dial(
        self,
        server_url: str,
        public_host: str,
        *,
        caller: str = "+15550001111",
        callee: str = "+15550002222",
    ) -> SimulatedCall:
        """Ring the server (``server_url`` = ``http://127.0.0.1:PORT``) and return the live call.
        Raises :class:`CallRejected` when the server turns the call away (at its cap)."""
        call_sid = "CA" + secrets.token_hex(16)
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call_sid,
            "CallStatus": "ringing",
            "Called": callee,
            "Caller": caller,
            "Direction": "inbound",
            "From": caller,
            "To": callee,
        }
        signature = compute_signature(self.auth_token, f"https://{public_host}/webhooks/twilio/voice", form)
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(
                server_url + "/webhooks/twilio/voice", data=form, headers={"X-Twilio-Signature": signature}
            )
        if response.status_code != 200:
            raise RuntimeError(
                f"the server refused the call: HTTP {response.status_code} {response.text[:200]}"
            )
        stream_url, params = _parse_stream(response.text)
        path = urlparse(stream_url).path
        ws_url = "ws://" + urlparse(server_url).netloc + path
        ws_signature = compute_signature(self.auth_token, stream_url, {})
        ws = await connect(ws_url, additional_headers={"X-Twilio-Signature": ws_signature}, max_size=2**22)
        call = SimulatedCall(ws, call_sid, "MZ" + secrets.token_hex(16))
        self.calls[call_sid] = call
        await call.start(self.account_sid, params)
        return call

    async def _update_call(self, request: Request) -> Response:
        if not _basic_auth_ok(request, self.account_sid, self.auth_token):
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401}, status_code=401)
        sid = request.path_params["sid"]
        call = self.calls.get(sid)
        if call is None:
            return JSONResponse({"code": 20404, "message": "Not found", "status": 404}, status_code=404)
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        twiml = form.get("Twiml", "")
        if form.get("Status") == "completed" or twiml:
            dialled = re.search(r"<Dial[^>]*>\s*([^<\s]+)\s*</Dial>", twiml)
            if dialled:
                self.transfers[sid] = dialled.group(1)
            await call.end("transfer" if dialled else "server_hangup")
        return JSONResponse({"sid": sid, "status": "completed", "account_sid": self.account_sid})


def _parse_stream(twiml: str) -> tuple[str, dict[str, str]]:
    root = ElementTree.fromstring(twiml)
    reject = root.find("./Reject")
    if reject is not None:
        raise CallRejected(reject.get("reason", "rejected"))
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise RuntimeError("the server did not answer with <Connect><Stream url=...>")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return str(stream.get("url")), params


def _basic_auth_ok(request: Request, user: str, password: str) -> bool:
    expected = httpx.BasicAuth(user, password)._auth_header
    return request.headers.get("authorization") == expected
