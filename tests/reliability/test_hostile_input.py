"""Hostile input, property-based: parsers never crash on garbage.

Media codecs, ``sanitize_call_id``, the audio helpers and the webhook signature verifiers are pure and
driven directly; the webhooks over a real server are in ``test_hostile_webhooks.py``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, get_args

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

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
from getpatter.carriers.telnyx.media import TelnyxMediaCodec
from getpatter.carriers.telnyx.signature import verify_webhook
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.carriers.twilio.signature import verify_signature
from getpatter.dashboard.persistence import call_dir, sanitize_call_id
from tests.fakes.telnyx import FakeTelnyx
from tests.reliability._strategies import json_scalars, json_values
from tests.reliability._support import PUBLIC_HOST

# -- strategies ------------------------------------------------------------------------------------------

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
