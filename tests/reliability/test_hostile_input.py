"""Hostile input, property-based: parsers never crash on garbage, webhooks never answer 5xx.

Media codecs and ``sanitize_call_id`` are pure and driven directly. The webhooks are driven over real
sockets against ``phone.asgi_app(...)`` (served by ``tests.fakes.server.running`` from a background
thread, since hypothesis runs synchronous tests), signed correctly where the point is to reach the code
behind the signature check.
"""

from __future__ import annotations

import base64
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from getpatter import Patter
from getpatter.audio import (
    ALAW_8K,
    MULAW_8K,
    PCM16_8K,
    PCM16_16K,
    PCM16_24K,
    FormatConverter,
    VoiceActivity,
    alaw_to_pcm16,
    apply_gain_db,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    rms_dbfs,
)
from getpatter.carriers.base import CarrierEvent, MediaProtocolError
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.telnyx.media import TelnyxMediaCodec
from getpatter.carriers.telnyx.signature import verify_webhook
from getpatter.carriers.twilio.config import Twilio
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.carriers.twilio.signature import verify_signature
from getpatter.dashboard.persistence import call_dir, sanitize_call_id
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.server import Running
from tests.fakes.telnyx import FakeTelnyx, sign
from tests.fakes.twilio import FakeTwilio, twilio_signature
from tests.reliability._support import NUMBER, PUBLIC_HOST, ThreadedApps

# -- strategies ------------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
EVENTS = ["connected", "start", "media", "mark", "dtmf", "stop", "error", "clear", "bogus", ""]
event_names = st.sampled_from(EVENTS) | st.text(max_size=10) | json_scalars


@st.composite
def media_like_messages(draw: st.DrawFn) -> dict[str, Any]:
    """Structurally plausible carrier messages whose field values are garbage."""
    msg: dict[str, Any] = {"event": draw(event_names)}
    for key in draw(
        st.lists(
            st.sampled_from(
                [
                    "start",
                    "media",
                    "mark",
                    "dtmf",
                    "stop",
                    "streamSid",
                    "stream_id",
                    "payload",
                    "error",
                    "sequenceNumber",
                ]
            ),
            max_size=5,
            unique=True,
        )
    ):
        if key in ("start", "media", "mark", "dtmf", "stop", "error"):
            inner_keys = [
                "streamSid",
                "stream_id",
                "callSid",
                "call_control_id",
                "customParameters",
                "custom_parameters",
                "payload",
                "track",
                "name",
                "digit",
                "media_format",
                "from",
                "to",
                "client_state",
                "code",
                "title",
            ]
            msg[key] = draw(
                st.dictionaries(
                    st.sampled_from(inner_keys), json_values | st.sampled_from(["", "inbound"]), max_size=6
                )
                | json_values
            )
        else:
            msg[key] = draw(json_values)
    return msg


def _is_json_object(message: str | bytes) -> bool:
    try:
        return isinstance(json.loads(message), dict)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False


def _parse_safely(codec: TwilioMediaCodec | TelnyxMediaCodec, message: str | bytes) -> CarrierEvent | None:
    """Parse ``message``: it yields a carrier event (or ``None``) or a :class:`MediaProtocolError` that says
    why; any other exception fails the test, and so does accepting a message that is not a JSON object."""
    try:
        event = codec.parse(message)
    except MediaProtocolError as exc:
        assert str(exc), "a refusal must say what was wrong"
        return None
    assert event is None or isinstance(event, get_args(CarrierEvent)), f"parse returned {event!r}"
    assert _is_json_object(message), f"accepted a message that is not a JSON object: {message[:80]!r}"
    return event


TELNYX_CODECS = ["L16", "PCMU", "PCMA"]
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- media codecs ------------------------------------------------------------------------------------------


@PROPERTY
@given(st.text(max_size=300) | st.binary(max_size=300))
@example("")
@example(b"\xff\xfe\x00")
@example("[" * 5000)
@example('{"event":"media","media":{"payload":"' + "A" * 3 + '"}}')
@example("1e999999")
@example('{"event":"start","start":' + "[" * 2000 + "]" * 2000 + "}")
def test_twilio_codec_raises_only_media_protocol_error_on_arbitrary_input(message: str | bytes) -> None:
    _parse_safely(TwilioMediaCodec(), message)
    started = TwilioMediaCodec("MZ" + "0" * 32)
    _parse_safely(started, message)


@PROPERTY
@given(st.sampled_from(TELNYX_CODECS), st.text(max_size=300) | st.binary(max_size=300))
@example("L16", '{"event":"media","media":{"payload":"AAA="}}')  # odd L16 byte count
@example("L16", "[" * 5000)
def test_telnyx_codec_raises_only_media_protocol_error_on_arbitrary_input(
    codec: str, message: str | bytes
) -> None:
    _parse_safely(TelnyxMediaCodec(codec), message)


@PROPERTY
@given(st.lists(media_like_messages(), min_size=1, max_size=4))
def test_twilio_codec_survives_valid_json_with_garbage_fields(messages: list[dict[str, Any]]) -> None:
    codec = TwilioMediaCodec()
    for msg in messages:
        _parse_safely(codec, json.dumps(msg))
    # Whatever it went through, it still speaks the protocol afterwards (or refuses before start).
    if codec.stream_sid is not None:
        out = json.loads(codec.audio(b"\xff" * 160))
        assert out["streamSid"] == codec.stream_sid and out["event"] == "media"
        assert json.loads(codec.mark("m1"))["mark"] == {"name": "m1"}


@PROPERTY
@given(st.sampled_from(TELNYX_CODECS), st.lists(media_like_messages(), min_size=1, max_size=4))
def test_telnyx_codec_survives_valid_json_with_garbage_fields(
    codec_name: str, messages: list[dict[str, Any]]
) -> None:
    codec = TelnyxMediaCodec(codec_name, params={"caller": "+15550001111"})
    for msg in messages:
        _parse_safely(codec, json.dumps(msg))
    out = json.loads(codec.audio(b"\x01\x02\x03"))
    assert out["event"] == "media" and isinstance(out["media"]["payload"], str)


@PROPERTY
@given(st.binary(max_size=2000), st.sampled_from(["inbound", "outbound", None]))
def test_twilio_media_payloads_of_any_bytes_round_trip(audio: bytes, track: str | None) -> None:
    codec = TwilioMediaCodec()
    media: dict[str, Any] = {"payload": base64.b64encode(audio).decode()}
    if track is not None:
        media["track"] = track
    event = codec.parse(json.dumps({"event": "media", "streamSid": "MZ1", "media": media}))
    if track == "outbound":
        assert event is None
    else:
        assert event is not None and getattr(event, "payload", None) == audio


# -- sanitize_call_id --------------------------------------------------------------------------------------

hostile_ids = (
    st.text(max_size=200)
    | st.from_regex(r"(\.\.|/|\\|\x00|%2e|%2f|~|[A-Za-z0-9])+", fullmatch=True)
    | st.sampled_from(
        [
            "..",
            ".",
            "../../etc/passwd",
            "..\\..\\x",
            "/abs/path",
            "C:\\x",
            "\x00",
            "CA/..",
            "....",
            ". .",
            "\u202e..",
            "\uff0e\uff0e",
            "con",
            "a" * 500,
        ]
    )
)


@settings(max_examples=500, deadline=None)
@given(hostile_ids)
def test_sanitize_call_id_is_always_one_safe_path_segment(call_id: str) -> None:
    safe = sanitize_call_id(call_id)
    assert safe  # never empty
    assert len(safe) <= 64
    assert safe not in (".", "..")
    assert not safe.startswith(".") and not safe.endswith(".")
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert safe.isascii() and all(ch.isalnum() or ch in "._-" for ch in safe)
    root = Path("/srv/patter-logs")
    target = call_dir(root, call_id, 1_700_000_000.0)
    assert target.parent == root / "calls" / "2023" / "11" / "14"
    assert target.name == safe
    # No segment of the joined path walks up, so it cannot escape its parent once resolved.
    assert ".." not in target.parts


# -- audio: arbitrary bytes never raise -------------------------------------------------------------------

FORMATS = [MULAW_8K, ALAW_8K, PCM16_8K, PCM16_16K, PCM16_24K]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(FORMATS),
    st.sampled_from(FORMATS),
    st.lists(st.binary(max_size=999), max_size=6),
    st.floats(min_value=-120.0, max_value=60.0),
)
def test_audio_converters_and_helpers_never_raise_on_arbitrary_bytes(
    src: Any, dst: Any, chunks: list[bytes], gain: float
) -> None:
    conv = FormatConverter(src, dst)
    for chunk in chunks:
        conv.process(chunk)
    conv.flush()
    vad = VoiceActivity()
    for chunk in chunks:
        mulaw_to_pcm16(chunk)
        alaw_to_pcm16(chunk)
        pcm16_to_mulaw(chunk)
        value = rms_dbfs(chunk)
        assert value == value  # not NaN
        vad.feed(chunk)
        assert len(apply_gain_db(chunk, gain)) == len(chunk)
    vad.finish()


# -- signature verifiers: garbage in, False out ----------------------------------------------------------

FAKE_TELNYX_KEY = FakeTelnyx().public_key


@PROPERTY
@given(
    st.dictionaries(
        st.sampled_from(["telnyx-signature-ed25519", "telnyx-timestamp", "Telnyx-Timestamp", "x"]),
        st.text(max_size=100) | st.integers().map(str),
        max_size=3,
    ),
    st.binary(max_size=200),
    st.text(max_size=60) | st.just(FAKE_TELNYX_KEY),
)
def test_telnyx_verify_webhook_never_raises(headers: dict[str, str], body: bytes, key: str) -> None:
    assert verify_webhook(key, headers, body) in (True, False)


@PROPERTY
@given(
    st.text(max_size=40),
    st.text(max_size=80),
    st.lists(st.tuples(st.text(max_size=20), st.text(max_size=40)), max_size=6),
    st.none() | st.text(max_size=60),
    st.none() | st.binary(max_size=60),
)
@example("tok", "bodySHA256=abc", [], "sig", b"{}")
@example("tok", "bodySHA256=%ZZ&bodySHA256=x", [], "sig", b"{}")
def test_twilio_verify_signature_never_raises(
    token: str, query: str, params: list[tuple[str, str]], signature: str | None, body: bytes | None
) -> None:
    """Whatever a request carries (query, form, header, body), the answer is a bool. The URL's host is
    the configured webhook host, so only the query part is hostile."""
    url = f"https://{PUBLIC_HOST}/webhooks/twilio/voice?{query}"
    assert verify_signature(token, url, params, signature, body=body) in (True, False)


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
