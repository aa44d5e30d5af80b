"""Hostile input, property-based: webhooks never answer 5xx, whatever they are sent.

The webhooks are driven over real sockets against ``phone.asgi_app(...)`` (served by
``tests.fakes.server.running`` from a background thread, since hypothesis runs synchronous tests), signed
correctly where the point is to reach the code behind the signature check. The pure parsers are fuzzed in
``test_hostile_input.py``.
"""

from __future__ import annotations

import base64
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from getpatter import Patter
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.server import Running
from tests.fakes.telnyx import FakeTelnyx, sign
from tests.fakes.twilio import FakeTwilio, twilio_signature
from tests.reliability._strategies import json_values
from tests.reliability._support import NUMBER, PUBLIC_HOST, ThreadedApps

# -- webhooks over the real server ------------------------------------------------------------------------

SERVER = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TWILIO_PATHS = [
    "/webhooks/twilio/voice",
    "/webhooks/twilio/status",
    "/webhooks/twilio/amd",
    "/webhooks/twilio/recording",
]
TWILIO_FIELDS = [
    "AccountSid",
    "CallSid",
    "CallStatus",
    "From",
    "To",
    "Caller",
    "Called",
    "Direction",
    "SequenceNumber",
    "CallDuration",
    "AnsweredBy",
    "RecordingSid",
    "RecordingUrl",
    "RecordingStatus",
    "RecordingDuration",
    "ErrorCode",
    "Timestamp",
]
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(
    str.strip
)


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[tuple[Running, FakeTwilio, Patter]]:
    fake = FakeTwilio(owned_numbers=(NUMBER,))
    made: list[Patter] = []

    def build(extra: list[Running]) -> Any:
        phone = Patter(
            carrier=Twilio(fake.account_sid, fake.auth_token, base_url=extra[0].http_url),
            phone_number=NUMBER,
            webhook_url=PUBLIC_HOST,
        )
        made.append(phone)
        agent = _unused_pipeline_agent(phone)
        return phone.asgi_app(agent, on_message=lambda event: "ok")

    with ThreadedApps(build, extra=[fake.app]) as apps:
        assert apps.server is not None
        yield apps.server, fake, made[0]


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=20.0) as c:
        yield c


def _signed_headers(token: str, path: str, query: str, body: str) -> dict[str, str]:
    url = f"https://{PUBLIC_HOST}{path}" + (f"?{query}" if query else "")
    params = parse_qsl(body, keep_blank_values=True)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": twilio_signature(token, url, params),
    }


@SERVER
@given(
    path=st.sampled_from([*TWILIO_PATHS, "/webhooks/twilio/nope", "/health"]),
    body=st.binary(max_size=600),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "Content-Type",
                "X-Twilio-Signature",
                "X-Forwarded-For",
                "X-Forwarded-Proto",
                "Host",
                "Content-Encoding",
                "Transfer-Encoding-X",
            ]
        ),
        header_values,
        max_size=4,
    ),
    query=st.text(max_size=40),
)
def test_twilio_webhooks_never_answer_5xx_to_arbitrary_requests(
    twilio_server: tuple[Running, FakeTwilio, Patter],
    client: httpx.Client,
    path: str,
    body: bytes,
    headers: dict[str, str],
    query: str,
) -> None:
    server, _, _ = twilio_server
    url = server.http_url + path + ("?" + urlencode({"q": query}) if query else "")
    response = client.post(url, content=body, headers=headers)
    assert response.status_code < 500, (response.status_code, response.text[:200])


@SERVER
@given(
    path=st.sampled_from(TWILIO_PATHS),
    fields=st.dictionaries(st.sampled_from(TWILIO_FIELDS), st.text(max_size=60), max_size=10),
    extra=st.lists(st.tuples(st.text(max_size=15), st.text(max_size=30)), max_size=4),
    query=st.sampled_from(["", "caller_call_sid=CA1", "a=%ZZ&b"]),
)
@example(
    path="/webhooks/twilio/voice",
    fields={"CallSid": "CA" + "1" * 32, "From": "\x00\x01<&>\ud7ff\ufffe"},
    extra=[],
    query="",
)
@example(
    path="/webhooks/twilio/amd",
    fields={"CallSid": "CA" + "2" * 32, "AnsweredBy": "machine_end_beep"},
    extra=[],
    query="",
)
@example(
    path="/webhooks/twilio/status",
    fields={
        "CallSid": "CA" + "3" * 32,
        "CallStatus": "completed",
        "CallDuration": "1e400",
        "SequenceNumber": "99999999999999",
    },
    extra=[],
    query="",
)
def test_twilio_webhooks_never_answer_5xx_to_signed_arbitrary_forms(
    twilio_server: tuple[Running, FakeTwilio, Patter],
    client: httpx.Client,
    path: str,
    fields: dict[str, str],
    extra: list[tuple[str, str]],
    query: str,
) -> None:
    server, fake, phone = twilio_server
    body = urlencode(list(fields.items()) + extra)
    headers = _signed_headers(fake.auth_token, path, query, body)
    response = client.post(
        server.http_url + path + (f"?{query}" if query else ""), content=body, headers=headers
    )
    assert response.status_code in (200, 204, 400), (response.status_code, response.text[:200])
    if path.endswith("/voice") and response.status_code == 200:
        root = ET.fromstring(response.text)  # always well-formed TwiML, whatever the caller ID held
        stream = root.find("Connect/Stream")
        assert stream is not None and stream.get("url", "").startswith(f"wss://{PUBLIC_HOST}/ws/stream/")
    # A webhook is not a call: nothing here may create a live call record.
    assert phone.metrics_store.get_active_calls() == []


@pytest.mark.parametrize("size", [64 * 1024 + 1, 5 * 1024 * 1024])
@pytest.mark.parametrize("path", TWILIO_PATHS)
def test_twilio_webhooks_refuse_huge_bodies_without_5xx(
    twilio_server: tuple[Running, FakeTwilio, Patter], client: httpx.Client, path: str, size: int
) -> None:
    server, fake, _ = twilio_server
    body = urlencode({"CallSid": "CA" + "5" * 32, "CallStatus": "completed", "Pad": "x" * size})
    status, text = _refused_upload(
        lambda: client.post(
            server.http_url + path, content=body, headers=_signed_headers(fake.auth_token, path, "", body)
        )
    )
    assert status in (400, 403, 413, "closed"), status
    assert "<Stream" not in text


# -- Telnyx webhooks --------------------------------------------------------------------------------------

TELNYX_EVENTS = [
    "call.initiated",
    "call.answered",
    "call.hangup",
    "call.dtmf.received",
    "call.recording.saved",
    "call.machine.detection.ended",
    "call.machine.greeting.ended",
    "call.machine.premium.detection.ended",
    "call.speak.ended",
    "streaming.started",
    "streaming.failed",
    "streaming.stopped",
    "other.event",
]
TELNYX_PAYLOAD_KEYS = [
    "call_control_id",
    "from",
    "to",
    "direction",
    "hangup_cause",
    "hangup_source",
    "digit",
    "result",
    "client_state",
    "recording_urls",
    "public_recording_urls",
    "recording_started_at",
    "recording_ended_at",
    "recording_id",
    "channels",
    "failure_reason",
    "state",
]
good_ccid = st.from_regex(r"v3:[A-Za-z0-9_-]{1,40}", fullmatch=True)


@st.composite
def telnyx_envelopes(draw: st.DrawFn) -> Any:
    payload = draw(st.dictionaries(st.sampled_from(TELNYX_PAYLOAD_KEYS), json_values, max_size=8))
    if draw(st.booleans()):
        payload["call_control_id"] = draw(good_ccid)
    if draw(st.booleans()):
        payload["direction"] = draw(st.sampled_from(["incoming", "outgoing"]))
    if draw(st.booleans()):
        payload["client_state"] = base64.b64encode(
            json.dumps(
                {"getpatter": "getpatter-outbound", "first_message": draw(st.text(max_size=20))}
            ).encode()
        ).decode()
    data: dict[str, Any] = {
        "event_type": draw(st.sampled_from(TELNYX_EVENTS) | st.text(max_size=20)),
        "payload": payload,
    }
    if draw(st.booleans()):
        data["id"] = draw(st.uuids().map(str) | json_values)
    envelope: Any = {"data": data, "meta": draw(json_values)}
    return draw(st.just(envelope) | json_values) if draw(st.integers(0, 9)) == 0 else envelope


def _telnyx_server(fake: FakeTelnyx, *, signed: bool) -> ThreadedApps:
    def build(extra: list[Running]) -> Any:
        phone = Patter(
            carrier=Telnyx(
                api_key=fake.api_key,
                connection_id=fake.connection_id,
                public_key=fake.public_key if signed else "",
                allow_unsigned_webhooks=not signed,
                base_url=extra[0].http_url + "/v2",
            ),
            phone_number=NUMBER,
            webhook_url=PUBLIC_HOST,
        )
        agent = _unused_pipeline_agent(phone)
        return phone.asgi_app(agent, on_message=lambda event: "ok")

    return ThreadedApps(build, extra=[fake.app])


@pytest.fixture(scope="module")
def telnyx_signed() -> Iterator[tuple[Running, FakeTelnyx]]:
    fake = FakeTelnyx()
    with _telnyx_server(fake, signed=True) as apps:
        assert apps.server is not None
        yield apps.server, fake


@pytest.fixture(scope="module")
def telnyx_unsigned() -> Iterator[tuple[Running, FakeTelnyx]]:
    fake = FakeTelnyx()
    with _telnyx_server(fake, signed=False) as apps:
        assert apps.server is not None
        yield apps.server, fake


def _refused_upload(post: Callable[[], httpx.Response]) -> tuple[int | str, str]:
    """The answer to an upload the server refuses while it streams in: a status, or ``"closed"`` when the
    server's 413 and close raced the rest of the upload (the client then sees the connection cut; a
    server answers before reading what it refuses)."""
    try:
        response = post()
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        return "closed", ""
    return response.status_code, response.text


def _telnyx_post(
    client: httpx.Client, server: Running, raw: bytes, headers: dict[str, str]
) -> httpx.Response:
    return client.post(server.http_url + "/webhooks/telnyx/voice", content=raw, headers=headers)


def _telnyx_signed_headers(fake: FakeTelnyx, raw: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "telnyx-timestamp": ts,
        "telnyx-signature-ed25519": sign(fake.signing_key, ts, raw),
    }


@SERVER
@given(
    body=st.binary(max_size=600),
    headers=st.dictionaries(
        st.sampled_from(["Content-Type", "telnyx-signature-ed25519", "telnyx-timestamp", "X-Forwarded-For"]),
        header_values,
        max_size=4,
    ),
)
def test_telnyx_webhook_never_answers_5xx_to_arbitrary_unsigned_requests(
    telnyx_signed: tuple[Running, FakeTelnyx], client: httpx.Client, body: bytes, headers: dict[str, str]
) -> None:
    server, _ = telnyx_signed
    response = _telnyx_post(client, server, body, headers)
    assert response.status_code == 403, (response.status_code, response.text[:200])


@SERVER
@given(envelope=telnyx_envelopes())
def test_telnyx_webhook_never_answers_5xx_to_signed_arbitrary_json(
    telnyx_signed: tuple[Running, FakeTelnyx], client: httpx.Client, envelope: Any
) -> None:
    server, fake = telnyx_signed
    raw = json.dumps(envelope).encode()
    response = _telnyx_post(client, server, raw, _telnyx_signed_headers(fake, raw))
    assert response.status_code in (200, 400), (response.status_code, response.text[:200])


@SERVER
@given(envelope=telnyx_envelopes(), body=st.binary(max_size=300))
def test_telnyx_webhook_without_a_public_key_never_answers_5xx(
    telnyx_unsigned: tuple[Running, FakeTelnyx], client: httpx.Client, envelope: Any, body: bytes
) -> None:
    server, _ = telnyx_unsigned
    for raw in (json.dumps(envelope).encode(), body):
        response = _telnyx_post(client, server, raw, {"Content-Type": "application/json"})
        assert response.status_code in (200, 400), (response.status_code, response.text[:200])


@pytest.mark.parametrize("size", [256 * 1024 + 1, 5 * 1024 * 1024])
def test_telnyx_webhook_refuses_huge_bodies_with_413(
    telnyx_signed: tuple[Running, FakeTelnyx], client: httpx.Client, size: int
) -> None:
    server, fake = telnyx_signed
    raw = json.dumps({"data": {"event_type": "call.hangup", "payload": {"pad": "x" * size}}}).encode()
    status, _ = _refused_upload(lambda: _telnyx_post(client, server, raw, _telnyx_signed_headers(fake, raw)))
    assert status in (413, "closed"), status


@pytest.mark.parametrize("deep", ["[" * 3000, '{"a":' * 3000])
def test_telnyx_webhook_with_absurdly_nested_json_body_is_a_400(
    telnyx_signed: tuple[Running, FakeTelnyx], client: httpx.Client, deep: str
) -> None:
    server, fake = telnyx_signed
    raw = deep.encode()
    response = _telnyx_post(client, server, raw, _telnyx_signed_headers(fake, raw))
    assert response.status_code == 400


# -- an agent whose vendors are never reached: these tests open no media stream ---------------------------


def _unused_pipeline_agent(phone: Patter) -> Any:
    return phone.agent(
        "You are terse.",
        stt=DeepgramSTT(api_key="dg-unused", base_url="ws://127.0.0.1:9"),
        tts=ElevenLabsTTS(api_key="el-unused", base_url="http://127.0.0.1:9"),
    )
