"""TwilioRestClient and TwilioCallControl against the strict fake Twilio REST API."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from getpatter.carriers.twilio.rest import TwilioApiError, TwilioCallControl, TwilioRestClient
from getpatter.errors import AuthenticationError, ErrorCode, PatterConnectionError, RateLimitError
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio

OWNED = "+15550002222"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h.example/ws/stream/outbound"/></Connect></Response>'


@dataclass
class Env:
    fake: FakeTwilio
    client: TwilioRestClient
    base_url: str


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = FakeTwilio(owned_numbers=(OWNED, "+15550009999"))
    async with running(fake.app) as srv:
        client = TwilioRestClient(fake.account_sid, fake.auth_token, base_url=srv.http_url)
        try:
            yield Env(fake, client, srv.http_url)
        finally:
            await client.close()
            await fake.aclose()


async def test_create_call_sends_every_field_form_encoded(env: Env) -> None:
    call = await env.client.create_call(
        "+15550001111",
        OWNED,
        twiml=TWIML,
        status_callback="https://h.example/webhooks/twilio/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        timeout=25,
        machine_detection="DetectMessageEnd",
        async_amd=True,
        async_amd_status_callback="https://h.example/webhooks/twilio/amd",
        record=False,
    )
    assert call["sid"].startswith("CA") and len(call["sid"]) == 34
    assert call["status"] == "queued" and call["direction"] == "outbound-api"
    assert call["to"] == "+15550001111" and call["from"] == OWNED
    (req,) = env.fake.requests
    assert req.method == "POST" and req.status == 201 and req.authorized
    assert req.path == f"/2010-04-01/Accounts/{env.fake.account_sid}/Calls.json"
    assert req.content_type == "application/x-www-form-urlencoded"
    assert req.form == {
        "To": "+15550001111",
        "From": OWNED,
        "Twiml": TWIML,
        "StatusCallback": "https://h.example/webhooks/twilio/status",
        "StatusCallbackMethod": "POST",
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": "25",
        "MachineDetection": "DetectMessageEnd",
        "AsyncAmd": "true",
        "AsyncAmdStatusCallback": "https://h.example/webhooks/twilio/amd",
        "AsyncAmdStatusCallbackMethod": "POST",
        "Record": "false",
    }
    assert env.fake.calls[call["sid"]].twiml == TWIML


async def test_create_call_with_url_and_minimal_fields(env: Env) -> None:
    await env.client.create_call("+15550001111", OWNED, url="https://h.example/voice")
    assert env.fake.requests[-1].form == {
        "To": "+15550001111",
        "From": OWNED,
        "Url": "https://h.example/voice",
        "Method": "POST",
    }
    with pytest.raises(ValueError):
        await env.client.create_call("+15550001111", OWNED)
    with pytest.raises(ValueError):
        await env.client.create_call("+15550001111", OWNED, twiml=TWIML, url="https://h.example/v")


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        ("5551234567", OWNED, 21211),
        ("+15550001111", "+15557770000", 21210),
        ("+15550001111", "15550002222", 21212),
    ],
)
async def test_create_call_refusals_carry_twilio_code(env: Env, to: str, from_: str, code: int) -> None:
    with pytest.raises(TwilioApiError) as info:
        await env.client.create_call(to, from_, twiml=TWIML)
    assert info.value.status == 400 and info.value.twilio_code == code
    assert info.value.code == ErrorCode.PROVIDER_ERROR
    assert str(code) in str(info.value)


async def test_fake_rejects_missing_params_and_bad_twiml(env: Env) -> None:
    auth = (env.fake.account_sid, env.fake.auth_token)
    url = f"{env.base_url}/2010-04-01/Accounts/{env.fake.account_sid}/Calls.json"
    async with httpx.AsyncClient(auth=auth) as raw:
        cases = [
            ({"From": OWNED, "Twiml": TWIML}, 21201),
            ({"To": "+15550001111", "Twiml": TWIML}, 21213),
            ({"To": "+15550001111", "From": OWNED}, 21200),
            ({"To": "+15550001111", "From": OWNED, "Twiml": "<Response><Say>unclosed</Response>"}, 21200),
            ({"To": "+15550001111", "From": OWNED, "Twiml": TWIML, "Timeout": "abc"}, 21200),
        ]
        for form, code in cases:
            resp = await raw.post(url, data=form)
            assert resp.status_code == 400
            assert resp.json()["code"] == code and resp.json()["status"] == 400
        resp = await raw.post(url, json={"To": "+15550001111", "From": OWNED, "Twiml": TWIML})
        assert resp.status_code == 400 and resp.json()["code"] == 21201  # JSON bodies are not read
    assert env.fake.calls == {}


async def test_fetch_update_hangup_and_recording(env: Env) -> None:
    created = await env.client.create_call("+15550001111", OWNED, twiml=TWIML)
    sid = created["sid"]
    fetched = await env.client.fetch_call(sid)
    assert fetched["sid"] == sid and fetched["status"] == "queued"
    assert env.fake.requests[-1].method == "GET"
    env.fake.calls[sid].status = "in-progress"  # answered
    rec = await env.client.start_recording(sid, status_callback="https://h.example/webhooks/twilio/recording")
    assert rec["sid"].startswith("RE") and rec["call_sid"] == sid
    assert env.fake.requests[-1].path.endswith(f"/Calls/{sid}/Recordings.json")
    assert env.fake.requests[-1].form == {
        "RecordingStatusCallback": "https://h.example/webhooks/twilio/recording",
        "RecordingStatusCallbackMethod": "POST",
    }
    done = await env.client.hangup(sid)
    assert done["status"] == "completed"
    assert env.fake.requests[-1].form == {"Status": "completed"}
    assert env.fake.calls[sid].ended_by == "rest-completed"
    with pytest.raises(TwilioApiError) as info:
        await env.client.update_call(sid, twiml="<Response><Hangup/></Response>")
    assert info.value.twilio_code == 21220


async def test_call_control_transfer_hangup_idempotent(env: Env) -> None:
    sid = (await env.client.create_call("+15550001111", OWNED, twiml=TWIML))["sid"]
    env.fake.calls[sid].status = "in-progress"
    control = TwilioCallControl(env.client, sid)
    with pytest.raises(ValueError):
        await control.transfer("555-0100")
    await control.transfer("+15550003333")
    twiml = env.fake.requests[-1].form["Twiml"]
    assert isinstance(twiml, str)
    dial = ET.fromstring(twiml).find("Dial")
    assert dial is not None and dial.text == "+15550003333"
    assert env.fake.calls[sid].twiml_updates == [twiml]
    rec = await control.start_recording()
    assert rec["call_sid"] == sid
    await control.hangup()
    assert env.fake.calls[sid].status == "completed"
    await control.hangup()  # already over (21220): no error
    await TwilioCallControl(env.client, "CA" + "f" * 32).hangup()  # unknown (404): no error
    assert [r.status for r in env.fake.requests_to(".json", "POST")[-2:]] == [400, 404]


async def test_configure_number_found_and_not_found(env: Env) -> None:
    found = await env.client.find_number(OWNED)
    assert found is not None and found["phone_number"] == OWNED
    assert env.fake.requests[-1].query == {"PhoneNumber": OWNED}
    ok = await env.client.configure_number(
        OWNED,
        "https://h.example/webhooks/twilio/voice",
        status_callback="https://h.example/webhooks/twilio/status",
    )
    assert ok is True
    update = env.fake.requests[-1]
    assert update.path.endswith(f"/IncomingPhoneNumbers/{found['sid']}.json")
    assert update.form == {
        "VoiceUrl": "https://h.example/webhooks/twilio/voice",
        "VoiceMethod": "POST",
        "StatusCallback": "https://h.example/webhooks/twilio/status",
        "StatusCallbackMethod": "POST",
    }
    number = env.fake.number(OWNED)
    assert (
        number["voice_url"] == "https://h.example/webhooks/twilio/voice" and number["voice_method"] == "POST"
    )
    assert env.fake.number("+15550009999")["voice_url"] == ""
    before = len(env.fake.requests)
    assert await env.client.configure_number("+15550004444", "https://h.example/v") is False
    assert len(env.fake.requests) == before + 1  # only the lookup
    # A partial match ("+1555000222" is in "+15550002222") is not the number.
    assert await env.client.find_number("+1555000222") is None


async def test_bad_credentials_map_to_authentication_error_without_the_token(env: Env) -> None:
    bad = TwilioRestClient(env.fake.account_sid, "super-secret-wrong-token", base_url=env.base_url)
    try:
        with pytest.raises(AuthenticationError) as info:
            await bad.fetch_call("CA" + "0" * 32)
    finally:
        await bad.close()
    assert "20003" in str(info.value) and "super-secret" not in str(info.value)
    assert "super-secret" not in repr(bad)
    assert env.fake.requests[-1].authorized is False and env.fake.requests[-1].status == 401


async def test_error_mapping_for_injected_failures(env: Env) -> None:
    env.fake.inject_error(429, 20429, "Too Many Requests", retry_after=3)
    with pytest.raises(RateLimitError) as rl:
        await env.client.find_number(OWNED)
    assert rl.value.retry_after == 3.0 and "20429" in str(rl.value)
    env.fake.inject_error(500, 20500, "Internal Server Error")
    with pytest.raises(PatterConnectionError) as err:
        await env.client.find_number(OWNED)
    assert not isinstance(err.value, RateLimitError) and "20500" in str(err.value)
    env.fake.inject_error(403, 20003, "Forbidden")
    with pytest.raises(AuthenticationError):
        await env.client.find_number(OWNED)
    assert await env.client.find_number(OWNED) is not None  # injections consumed


async def test_network_failure_maps_to_connection_error() -> None:
    client = TwilioRestClient("AC" + "0" * 32, "tok", base_url="http://127.0.0.1:9", timeout=2)
    try:
        with pytest.raises(PatterConnectionError):
            await client.fetch_call("CA" + "0" * 32)
    finally:
        await client.close()


async def test_sids_cannot_alter_the_request_path(env: Env) -> None:
    with pytest.raises(ValueError):
        await env.client.fetch_call("../IncomingPhoneNumbers")
    with pytest.raises(ValueError):
        TwilioRestClient("AC/../x", "tok")
    assert env.fake.requests == []
