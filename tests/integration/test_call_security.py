"""Webhook security over the real server: Twilio signatures, TwiML answers, hostile form values, health.

Every request goes over a real socket to ``phone.asgi_app(...)``; the fake Twilio signs (or forges) the
``X-Twilio-Signature`` the way Twilio does, over ``https://{public host}{path}`` plus the sorted form.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest

from tests.fakes.twilio import VOICE_PATH, new_sid, parse_connect_stream, twilio_signature
from tests.integration.harness import NUMBER, PUBLIC_HOST, Harness, call_harness

STATUS_PATH = "/webhooks/twilio/status"
CALLER = "+15550001111"


async def _get(h: Harness, path: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5.0) as client:
        return await client.get(h.server.http_url + path)


def _voice_form(h: Harness, *, call_sid: str | None = None, from_: str = CALLER) -> dict[str, str]:
    return h.twilio.voice_form(call_sid=call_sid or new_sid("CA"), from_=from_, to=NUMBER)


async def _assert_no_call_started(h: Harness, started: list[dict[str, Any]]) -> None:
    """Nothing behind the webhook ran: no call session, no STT socket, no callbacks."""
    health = (await _get(h, "/health")).json()
    assert health["status"] == "ok"
    assert health.get("active_calls", 0) == 0
    assert started == []
    assert h.deepgram.connections == []
    assert h.llm.requests == [] and h.tts.texts == []


def _forged_requests() -> list[Any]:
    """(id, how to post) pairs for every way a voice webhook can fail signature validation."""

    async def forged(h: Harness, form: dict[str, str]) -> httpx.Response:
        # Right algorithm and URL, wrong key: what an attacker who knows the URL can produce.
        bad = twilio_signature("not-the-auth-token", f"https://{PUBLIC_HOST}{VOICE_PATH}", form.items())
        return await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form, signature=bad)

    async def garbage(h: Harness, form: dict[str, str]) -> httpx.Response:
        return await h.twilio.post_voice_webhook(
            h.server.http_url, PUBLIC_HOST, form=form, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        )

    async def missing(h: Harness, form: dict[str, str]) -> httpx.Response:
        return await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form, sign=False)

    async def empty(h: Harness, form: dict[str, str]) -> httpx.Response:
        return await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form, signature="")

    async def wrong_host(h: Harness, form: dict[str, str]) -> httpx.Response:
        # Validly signed by the real auth token, but for another public host (a replayed webhook).
        return await h.twilio.post_webhook(h.server.http_url, "evil.example.test", VOICE_PATH, form)

    async def wrong_path(h: Harness, form: dict[str, str]) -> httpx.Response:
        sig = twilio_signature(h.twilio.auth_token, f"https://{PUBLIC_HOST}{STATUS_PATH}", form.items())
        return await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form, signature=sig)

    async def wrong_scheme(h: Harness, form: dict[str, str]) -> httpx.Response:
        sig = twilio_signature(h.twilio.auth_token, f"http://{PUBLIC_HOST}{VOICE_PATH}", form.items())
        return await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form, signature=sig)

    async def tampered(h: Harness, form: dict[str, str]) -> httpx.Response:
        # Signed over the genuine form, then the caller ID was rewritten in transit.
        sig = twilio_signature(h.twilio.auth_token, f"https://{PUBLIC_HOST}{VOICE_PATH}", form.items())
        evil = {**form, "From": "+15559999999", "Caller": "+15559999999"}
        return await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=evil, signature=sig)

    return [
        pytest.param(fn, id=fn.__name__)
        for fn in (forged, garbage, missing, empty, wrong_host, wrong_path, wrong_scheme, tampered)
    ]


@pytest.mark.parametrize("post", _forged_requests())
async def test_voice_webhook_with_bad_signature_is_refused_and_starts_nothing(post: Any) -> None:
    started: list[dict[str, Any]] = []
    async with call_harness(serve_kwargs={"on_call_start": started.append}) as h:
        form = _voice_form(h)
        response = await post(h, form)

        assert response.status_code == 403
        assert "Invalid signature" in response.text
        assert "<Stream" not in response.text and "wss://" not in response.text
        await _assert_no_call_started(h, started)
        # The same webhook, correctly signed, is accepted: the refusal was about the signature only.
        ok = await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form)
        assert ok.status_code == 200


async def test_signed_voice_webhook_answers_connect_stream_twiml() -> None:
    async with call_harness() as h:
        sid = new_sid("CA")
        response = await h.twilio.post_voice_webhook(
            h.server.http_url, PUBLIC_HOST, form=_voice_form(h, call_sid=sid)
        )

        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0].strip() == "text/xml"
        root = ET.fromstring(response.text)
        assert root.tag == "Response"
        assert [child.tag for child in root] == ["Connect"]
        connect = root[0]
        assert [child.tag for child in connect] == ["Stream"]
        stream = connect[0]
        assert stream.get("url") == f"wss://{PUBLIC_HOST}/ws/stream/{sid}"
        params = [(p.get("name"), p.get("value")) for p in stream]
        assert all(p.tag == "Parameter" for p in stream)
        token = dict(params)["stream_token"]  # the signed per-call token, checked on `start`
        assert token.startswith("v1.") and len(token) < 200  # well under Twilio's ~500-char limit
        assert sorted(params) == [("callee", NUMBER), ("caller", CALLER), ("stream_token", token)]
        # And it is TwiML the (strict) fake Twilio accepts.
        assert parse_connect_stream(response.text) == (
            f"wss://{PUBLIC_HOST}/ws/stream/{sid}",
            {"caller": CALLER, "callee": NUMBER, "stream_token": token},
            None,
        )


async def test_caller_and_callee_fall_back_to_caller_and_called_fields() -> None:
    async with call_harness() as h:
        form = _voice_form(h)
        del form["From"], form["To"]
        response = await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form)
        assert response.status_code == 200
        _, params, _ = parse_connect_stream(response.text)
        assert params.pop("stream_token").startswith("v1.")
        assert params == {"caller": CALLER, "callee": NUMBER}


HOSTILE_FROM = (
    '"/><Parameter name="caller" value="+15550000000"/></Stream><Say>pwned</Say>'
    "<!-- & ' <![CDATA[ ]]> &amp; &#x26;"
)


async def test_hostile_form_values_are_escaped_in_twiml_and_reach_the_call_verbatim() -> None:
    started: list[dict[str, Any]] = []
    async with call_harness(serve_kwargs={"on_call_start": started.append}) as h:
        form = _voice_form(h, from_=HOSTILE_FROM)
        response = await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form)
        assert response.status_code == 200
        root = ET.fromstring(response.text)  # still well-formed XML
        assert root.find("Say") is None and root.find(".//Say") is None
        streams = root.findall("Connect/Stream")
        assert len(streams) == 1
        params = streams[0].findall("Parameter")
        assert [(p.get("name"), p.get("value")) for p in params][:2] == [
            ("caller", HOSTILE_FROM),
            ("callee", NUMBER),
        ]
        assert [p.get("name") for p in params][2:] == ["stream_token"]

        # End to end: the hostile caller ID is carried as data into the call, byte for byte.
        call = await h.dial(from_=HOSTILE_FROM)
        await call.wait_for_agent_audio(timeout=5)
        assert call.custom_params.keys() == {"caller", "callee", "stream_token"}
        assert call.custom_params["caller"] == HOSTILE_FROM and call.custom_params["callee"] == NUMBER
        assert len(started) == 1 and started[0]["caller"] == HOSTILE_FROM
        # The token proved the socket; the call itself never sees it.
        assert started[0]["custom_params"] == {"caller": HOSTILE_FROM, "callee": NUMBER}
        await call.hangup()
        await h.wait_ended()
    assert h.ended[0]["caller"] == HOSTILE_FROM


@pytest.mark.parametrize("call_sid", ["", "CA12/../../admin", "CA12?x=1", "CA12 <x>"])
async def test_signed_voice_webhook_with_unusable_call_sid_gets_no_stream(call_sid: str) -> None:
    async with call_harness() as h:
        form = _voice_form(h)
        form["CallSid"] = call_sid
        response = await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, form=form)
        assert response.status_code == 400
        assert "<Stream" not in response.text


async def test_status_callback_requires_a_valid_signature() -> None:
    async with call_harness() as h:
        form = {
            **_voice_form(h),
            "CallStatus": "completed",
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "3",
            "CallDuration": "12",
        }
        url = f"https://{PUBLIC_HOST}{STATUS_PATH}"
        forged = twilio_signature("not-the-auth-token", url, form.items())
        server = h.server.http_url

        bad = await h.twilio.post_webhook(server, PUBLIC_HOST, STATUS_PATH, form, signature=forged)
        assert bad.status_code == 403
        missing = await h.twilio.post_webhook(server, PUBLIC_HOST, STATUS_PATH, form, sign=False)
        assert missing.status_code == 403
        elsewhere = await h.twilio.post_webhook(server, "evil.example.test", STATUS_PATH, form)
        assert elsewhere.status_code == 403

        good = await h.twilio.post_webhook(server, PUBLIC_HOST, STATUS_PATH, form)
        assert good.status_code == 204
        assert good.content == b""


async def test_status_callback_for_a_live_call_is_accepted_and_leaves_the_call_alone() -> None:
    async with call_harness(utterances=["Still there?"], replies=["Yes, I am here."]) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        response = await h.twilio.send_status_callback(
            call.sid, h.server.http_url, PUBLIC_HOST, "in-progress", sequence_number=1
        )
        assert response.status_code == 204
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        assert call.connected
        await call.hangup()
        await h.wait_ended()
    assert h.ended[0]["transcript"][-2:] == [
        {"role": "user", "text": "Still there?"},
        {"role": "assistant", "text": "Yes, I am here."},
    ]


async def test_health_reports_ok_local_mode() -> None:
    async with call_harness() as h:
        response = await _get(h, "/health")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["status"] == "ok"
        assert body["mode"] == "local"

        # Health stays up, and unauthenticated, while a call is live.
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        live = (await _get(h, "/health")).json()
        assert live["status"] == "ok" and live["mode"] == "local"
        await call.hangup()
        await h.wait_ended()


async def test_unknown_routes_and_docs_are_not_exposed() -> None:
    async with call_harness() as h:
        for path in ("/docs", "/openapi.json", "/redoc", "/webhooks/twilio/nope"):
            assert (await _get(h, path)).status_code == 404, path
        # The voice webhook only takes POST.
        assert (await _get(h, VOICE_PATH)).status_code == 405
