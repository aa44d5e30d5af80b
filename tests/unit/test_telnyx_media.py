"""The Telnyx media-socket codec: frame shapes from telnyx.md §5, L16 byte order, PCMU pass-through."""

from __future__ import annotations

import array
import base64
import json
import sys
from typing import Any

import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.carriers.base import (
    MediaAudio,
    MediaConnected,
    MediaDtmf,
    MediaMark,
    MediaProtocolError,
    MediaStarted,
    MediaStopped,
)
from getpatter.carriers.telnyx.media import TelnyxMediaCodec

STREAM = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"


def _start(**start: Any) -> str:
    body = {
        "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
        "call_control_id": "v3:abc-_def",
        "call_session_id": "ff55a038-0000-0000-0000-000000000000",
        "from": "+13122010094",
        "to": "+13122123456",
        "tags": ["TAG1"],
        "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
        "media_format": {"encoding": "L16", "sample_rate": 16000, "channels": 1},
    }
    body.update(start)
    return json.dumps({"event": "start", "sequence_number": "1", "start": body, "stream_id": STREAM})


def _media(payload: bytes, track: str = "inbound") -> str:
    media = {"track": track, "chunk": "2", "timestamp": "5", "payload": base64.b64encode(payload).decode()}
    return json.dumps({"event": "media", "sequence_number": "4", "media": media, "stream_id": STREAM})


def _big_endian(samples: list[int]) -> bytes:
    a = array.array("h", samples)
    if sys.byteorder == "little":
        a.byteswap()
    return a.tobytes()


def _little_endian(samples: list[int]) -> bytes:
    a = array.array("h", samples)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def test_start_gives_call_id_stream_and_params() -> None:
    codec = TelnyxMediaCodec(params={"caller": "+1555000", "callee": "+1555999"})
    assert codec.parse(json.dumps({"event": "connected", "version": "1.0.0"})) == MediaConnected()
    started = codec.parse(_start(custom_parameters={"customer_id": "c1"}))
    assert started == MediaStarted(
        stream_id=STREAM,
        call_id="v3:abc-_def",
        custom_params={"caller": "+1555000", "callee": "+1555999", "customer_id": "c1"},
    )
    assert codec.stream_id == STREAM and codec.client_state == "aGF2ZSBhIG5pY2UgZGF5ID1d"


def test_custom_parameters_as_name_value_list_are_accepted() -> None:
    started = TelnyxMediaCodec().parse(_start(custom_parameters=[{"name": "agent", "value": "sales"}]))
    assert isinstance(started, MediaStarted)
    assert started.custom_params["agent"] == "sales"


def test_start_from_and_to_fill_missing_caller_and_callee() -> None:
    started = TelnyxMediaCodec().parse(_start())
    assert isinstance(started, MediaStarted)
    assert started.custom_params == {"caller": "+13122010094", "callee": "+13122123456"}


def test_duplicate_start_does_not_readdress_the_stream() -> None:
    codec = TelnyxMediaCodec()
    codec.parse(_start())
    second = json.loads(_start(call_control_id="v3:evil"))
    second["stream_id"] = "OTHER"
    with pytest.raises(MediaProtocolError):
        codec.parse(json.dumps(second))
    assert codec.stream_id == STREAM and codec.call_control_id == "v3:abc-_def"


def test_l16_inbound_is_big_endian_on_the_wire_and_little_endian_inside() -> None:
    codec = TelnyxMediaCodec("L16")
    assert codec.wire_format == PCM16_16K
    samples = [0, 1, -1, 256, -32768, 32767, 12345]
    event = codec.parse(_media(_big_endian(samples)))
    assert event == MediaAudio(_little_endian(samples))


def test_l16_outbound_is_big_endian_and_odd_bytes_carry_over() -> None:
    codec = TelnyxMediaCodec("L16")
    pcm = _little_endian([1, 2, 3, -4])
    msg = json.loads(codec.audio(pcm))
    assert msg == {
        "event": "media",
        "media": {"payload": base64.b64encode(_big_endian([1, 2, 3, -4])).decode()},
    }
    first = base64.b64decode(json.loads(codec.audio(pcm[:3]))["media"]["payload"])
    second = base64.b64decode(json.loads(codec.audio(pcm[3:]))["media"]["payload"])
    assert first + second == _big_endian([1, 2, 3, -4])
    codec.audio(pcm[:1])
    codec.clear()  # a clear drops the half sample, so the next audio starts aligned
    assert base64.b64decode(json.loads(codec.audio(pcm[:2]))["media"]["payload"]) == _big_endian([1])


def test_l16_odd_inbound_payload_is_a_protocol_error() -> None:
    with pytest.raises(MediaProtocolError):
        TelnyxMediaCodec("L16").parse(_media(b"\x00\x01\x02"))


def test_pcmu_passes_bytes_through_both_ways() -> None:
    codec = TelnyxMediaCodec("PCMU")
    assert codec.wire_format == MULAW_8K
    data = bytes(range(256))[:160]
    assert codec.parse(_media(data)) == MediaAudio(data)
    assert base64.b64decode(json.loads(codec.audio(data[:7]))["media"]["payload"]) == data[:7]


def test_outbound_track_is_ignored() -> None:
    assert TelnyxMediaCodec().parse(_media(b"\0\0", track="outbound")) is None


def test_mark_clear_dtmf_stop_shapes() -> None:
    codec = TelnyxMediaCodec()
    assert json.loads(codec.mark('seg "1"')) == {"event": "mark", "mark": {"name": 'seg "1"'}}
    assert json.loads(codec.clear()) == {"event": "clear"}
    echoed = {"event": "mark", "stream_id": STREAM, "sequence_number": "5", "mark": {"name": "seg-1"}}
    assert codec.parse(json.dumps(echoed)) == MediaMark("seg-1")
    dtmf = {
        "event": "dtmf",
        "stream_id": STREAM,
        "occurred_at": "2025-06-05T08:54:19Z",
        "sequence_number": "5",
        "dtmf": {"digit": "#"},
    }
    assert codec.parse(json.dumps(dtmf)) == MediaDtmf("#")
    stop = {
        "event": "stop",
        "sequence_number": "5",
        "stop": {"call_control_id": "v3:abc"},
        "stream_id": STREAM,
    }
    assert codec.parse(json.dumps(stop)) == MediaStopped()


def test_error_frames_are_recorded_not_raised() -> None:
    codec = TelnyxMediaCodec()
    new = {"event": "error", "payload": {"code": 100003, "title": "malformed_frame", "detail": "x"}}
    old = {"event": "error", "error": {"code": "100004", "title": "invalid_media"}}
    assert codec.parse(json.dumps(new)) is None and codec.parse(json.dumps(old)) is None
    assert list(codec.errors) == [("100003", "malformed_frame"), ("100004", "invalid_media")]
    assert codec.parse(json.dumps({"event": "something_new"})) is None


def test_error_frames_are_kept_within_a_bound_and_counted() -> None:
    codec = TelnyxMediaCodec()
    for n in range(1000):
        codec.parse(json.dumps({"event": "error", "payload": {"code": n, "title": "flood"}}))
    assert len(codec.errors) == 32 and codec.errors[-1] == ("999", "flood")
    assert codec.error_count == 1000


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[]",
        "{}",
        json.dumps({"event": 5}),
        json.dumps({"event": "media"}),
        json.dumps({"event": "media", "media": {"payload": 5}}),
        json.dumps({"event": "media", "media": {"payload": "!!!"}}),
        json.dumps({"event": "start", "start": {"call_control_id": "v3:x"}}),
        json.dumps({"event": "start", "stream_id": "s", "start": {}}),
        json.dumps(
            {
                "event": "start",
                "stream_id": "s",
                "start": {"call_control_id": "v3:x", "custom_parameters": "x"},
            }
        ),
        json.dumps(
            {
                "event": "start",
                "stream_id": "s",
                "start": {"call_control_id": "v3:x", "custom_parameters": [1]},
            }
        ),
        json.dumps({"event": "mark", "mark": {}}),
        json.dumps({"event": "dtmf", "dtmf": {"digit": "x"}}),
        "x" * (1024 * 1024 + 1),
    ],
)
def test_malformed_input_is_a_media_protocol_error(message: str) -> None:
    with pytest.raises(MediaProtocolError):
        TelnyxMediaCodec().parse(message)


def test_unknown_codec_is_refused_and_pcma_is_available() -> None:
    with pytest.raises(ValueError):
        TelnyxMediaCodec("OPUS")
    assert TelnyxMediaCodec("pcma").wire_format.encoding == "alaw"


def test_announced_format_mismatch_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    TelnyxMediaCodec("L16").parse(_start(media_format={"encoding": "audio/x-mulaw", "sample_rate": 8000}))
    assert "audio will be wrong" in caplog.text
    caplog.clear()
    TelnyxMediaCodec("PCMU").parse(_start(media_format={"encoding": "audio/x-mulaw", "sample_rate": 8000}))
    assert caplog.text == ""
