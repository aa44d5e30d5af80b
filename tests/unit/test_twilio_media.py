"""TwilioMediaCodec: parse Twilio's messages, build the server's, refuse malformed input."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from getpatter.audio.format import MULAW_8K
from getpatter.carriers.base import (
    MediaAudio,
    MediaConnected,
    MediaDtmf,
    MediaMark,
    MediaProtocolError,
    MediaStarted,
    MediaStopped,
)
from getpatter.carriers.twilio.media import MAX_MESSAGE_BYTES, TwilioMediaCodec

SID = "MZ" + "ab" * 16
CALL = "CA" + "cd" * 16
START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC" + "0" * 32,
        "streamSid": SID,
        "callSid": CALL,
        "tracks": ["inbound"],
        "customParameters": {"caller": "+15550001111", "callee": "+15550002222"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
    "streamSid": SID,
}


def started() -> TwilioMediaCodec:
    codec = TwilioMediaCodec()
    codec.parse(json.dumps(START))
    return codec


def test_inbound_sequence() -> None:
    codec = TwilioMediaCodec()
    assert codec.wire_format == MULAW_8K
    assert codec.parse('{"event": "connected", "protocol": "Call", "version": "1.0.0"}') == MediaConnected()
    ev = codec.parse(json.dumps(START).encode())
    assert ev == MediaStarted(SID, CALL, {"caller": "+15550001111", "callee": "+15550002222"})
    assert codec.stream_sid == SID and codec.call_sid == CALL and codec.account_sid == "AC" + "0" * 32
    audio = bytes(range(160))
    media = {
        "event": "media",
        "sequenceNumber": "2",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "0",
            "payload": base64.b64encode(audio).decode(),
        },
        "streamSid": SID,
    }
    assert codec.parse(json.dumps(media)) == MediaAudio(audio)
    dtmf = {
        "event": "dtmf",
        "streamSid": SID,
        "sequenceNumber": "3",
        "dtmf": {"track": "inbound_track", "digit": "#"},
    }
    assert codec.parse(json.dumps(dtmf)) == MediaDtmf("#")
    mark = {"event": "mark", "sequenceNumber": "4", "streamSid": SID, "mark": {"name": "1:3"}}
    assert codec.parse(json.dumps(mark)) == MediaMark("1:3")
    stop = {
        "event": "stop",
        "sequenceNumber": "5",
        "stop": {"accountSid": "AC1", "callSid": CALL},
        "streamSid": SID,
    }
    assert codec.parse(json.dumps(stop)) == MediaStopped()


def test_start_without_custom_parameters_and_sid_only_at_top_level() -> None:
    msg = {"event": "start", "start": {"callSid": CALL}, "streamSid": SID}
    assert TwilioMediaCodec().parse(json.dumps(msg)) == MediaStarted(SID, CALL, {})


def test_unknown_events_and_outbound_track_are_ignored() -> None:
    codec = started()
    assert codec.parse('{"event": "something-new", "foo": 1}') is None
    outbound = {"event": "media", "media": {"track": "outbound", "payload": "AAAA"}, "streamSid": SID}
    assert codec.parse(json.dumps(outbound)) is None


def test_outbound_messages_round_trip() -> None:
    codec = started()
    payload = bytes(range(256)) * 3
    msg = orjson.loads(codec.audio(payload))
    assert msg == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(payload).decode()},
    }
    assert orjson.loads(codec.mark('odd "name" \\ é')) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": 'odd "name" \\ é'},
    }
    assert orjson.loads(codec.clear()) == {"event": "clear", "streamSid": SID}
    assert orjson.loads(codec.audio(b"")) == {"event": "media", "streamSid": SID, "media": {"payload": ""}}


def test_a_second_start_is_refused_and_keeps_the_stream_sid() -> None:
    codec = started()
    other = dict(START, streamSid="MZ" + "1" * 32, start=dict(START["start"], streamSid="MZ" + "1" * 32))  # type: ignore[arg-type]
    with pytest.raises(MediaProtocolError, match="duplicate"):
        codec.parse(json.dumps(other))
    assert orjson.loads(codec.clear())["streamSid"] == SID
    assert orjson.loads(TwilioMediaCodec(stream_sid=SID).mark("m"))["streamSid"] == SID


def test_outbound_before_start_is_refused() -> None:
    codec = TwilioMediaCodec()
    builders: list[Callable[[], str]] = [lambda: codec.audio(b"\xff"), lambda: codec.mark("m"), codec.clear]
    for build in builders:
        with pytest.raises(RuntimeError):
            build()


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        b"\xff\xfe",
        "[1, 2]",
        '"media"',
        "{}",
        '{"event": 5}',
        '{"event": "media"}',
        '{"event": "media", "media": {}}',
        '{"event": "media", "media": {"payload": 12}}',
        '{"event": "media", "media": {"payload": "!!!not base64!!!"}}',
        '{"event": "media", "media": {"payload": "AAA"}}',
        '{"event": "media", "media": {"payload": "é"}}',
        '{"event": "start"}',
        '{"event": "start", "start": {"streamSid": "MZ1"}}',
        '{"event": "start", "start": {"callSid": "CA1"}}',
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "customParameters": []}}',
        '{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1", "customParameters": {"a": 1}}}',
        '{"event": "mark", "mark": {}}',
        '{"event": "mark"}',
        '{"event": "dtmf", "dtmf": {"digit": "12"}}',
        '{"event": "dtmf", "dtmf": {"digit": "x"}}',
        '{"event": "dtmf"}',
        "\ud800",
    ],
)
def test_malformed_messages_raise_media_protocol_error(message: str | bytes) -> None:
    with pytest.raises(MediaProtocolError):
        started().parse(message)


def test_oversized_message_is_refused_before_parsing() -> None:
    payload = base64.b64encode(b"\xff" * (MAX_MESSAGE_BYTES // 4 * 3)).decode()
    big = json.dumps({"event": "media", "media": {"payload": payload}, "streamSid": SID})
    assert len(big) > MAX_MESSAGE_BYTES
    with pytest.raises(MediaProtocolError, match="exceeds"):
        started().parse(big)
    with pytest.raises(MediaProtocolError):
        started().parse(big.encode())


# Strict JSON that orjson accepts: finite floats, 64-bit integers.
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_events = st.sampled_from(["connected", "start", "media", "mark", "dtmf", "stop", "x", ""])


@settings(max_examples=150, deadline=None)
@given(
    _events,
    st.dictionaries(st.sampled_from(["start", "media", "mark", "dtmf", "stop", "streamSid"]), _json_values),
)
def test_parse_never_raises_anything_else_on_event_shaped_json(event: str, body: dict[str, object]) -> None:
    # Each event name parses to its own event type (or None: unknown events, the outbound track), or is
    # refused with a MediaProtocolError; nothing else escapes.
    expected: dict[str, tuple[type, ...]] = {
        "connected": (MediaConnected,),
        "start": (MediaStarted,),
        "media": (MediaAudio, type(None)),
        "mark": (MediaMark,),
        "dtmf": (MediaDtmf,),
        "stop": (MediaStopped,),
    }
    for codec in (TwilioMediaCodec(), started()):
        try:
            parsed = codec.parse(json.dumps({"event": event, **body}))
        except MediaProtocolError as exc:
            assert event not in ("connected", "x", ""), f"{event!r} needs no fields, yet refused: {exc}"
            continue
        assert isinstance(parsed, expected.get(event, (type(None),))), f"{event!r} parsed to {parsed!r}"
