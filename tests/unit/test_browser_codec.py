"""The in-page caller's codec: rate negotiation, framing both ways, marks, and strictness."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from getpatter.audio.format import PCM16_16K, PCM16_24K
from getpatter.call.playout import Playout
from getpatter.carriers.base import (
    MediaAudio,
    MediaDtmf,
    MediaMark,
    MediaProtocolError,
    MediaStarted,
    MediaStopped,
)
from getpatter.carriers.browser import KIND, BrowserCodec, is_browser_call_id
from getpatter.carriers.browser.codec import MAX_AUDIO_BYTES, MAX_TEXT_BYTES


def started(rates: object = (24000, 16000), key: str = "sample_rates") -> tuple[BrowserCodec, MediaStarted]:
    codec = BrowserCodec()
    value = list(rates) if isinstance(rates, tuple) else rates
    event = codec.parse(json.dumps({"event": "start", key: value}))
    assert isinstance(event, MediaStarted)
    return codec, event


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ((24000, 16000), PCM16_24K),
        ((16000, 24000), PCM16_16K),
        ((8000, 16000), PCM16_16K),
        ((48000, 24000), PCM16_24K),
    ],
)
def test_start_takes_the_first_offered_rate_it_supports(offered: tuple[int, ...], chosen: object) -> None:
    codec, event = started(offered)
    assert codec.wire_format == chosen
    assert event.call_id == event.stream_id and is_browser_call_id(event.call_id)
    assert event.custom_params == {"caller": KIND}
    reply = json.loads(codec.started_reply() or "")
    assert reply == {"event": "started", "call_id": event.call_id, "sample_rate": chosen.sample_rate}  # type: ignore[attr-defined]


def test_a_single_sample_rate_is_accepted_too() -> None:
    codec, _ = started(24000, key="sample_rate")
    assert codec.wire_format == PCM16_24K


@pytest.mark.parametrize("rates", [[], [8000, 44100], ["16000"], [True], "16000", [16000] * 9, None])
def test_start_without_a_usable_rate_is_a_protocol_error(rates: object) -> None:
    codec = BrowserCodec()
    with pytest.raises(MediaProtocolError):
        codec.parse(json.dumps({"event": "start", "sample_rates": rates}))
    assert codec.call_id is None and codec.started_reply() is None


def test_every_call_gets_its_own_unguessable_id() -> None:
    ids = {started()[1].call_id for _ in range(50)}
    assert len(ids) == 50
    assert not is_browser_call_id("BR" + "0" * 31) and not is_browser_call_id("CA" + "0" * 32)


def test_audio_is_raw_pcm16_frames_in_and_base64_json_out() -> None:
    codec, _ = started()
    frame = bytes(range(256)) * 3 + b"\x00\x01"
    assert codec.parse(frame) == MediaAudio(frame)
    out = json.loads(codec.audio(frame))
    assert out == {"event": "media", "audio": base64.b64encode(frame).decode()}
    assert json.loads(codec.clear()) == {"event": "clear"}


def test_marks_dtmf_and_stop_parse_and_marks_round_trip() -> None:
    codec, _ = started()
    sent = json.loads(codec.mark('seg-1 "quoted"'))
    assert sent == {"event": "mark", "name": 'seg-1 "quoted"'}
    assert codec.parse(json.dumps({"event": "mark", "name": sent["name"]})) == MediaMark(sent["name"])
    assert codec.parse(json.dumps({"event": "dtmf", "digit": "#"})) == MediaDtmf("#")
    assert isinstance(codec.parse(json.dumps({"event": "stop"})), MediaStopped)


@pytest.mark.parametrize(
    "message",
    [
        "nope",
        "[1, 2]",
        json.dumps({"event": "hello"}),
        json.dumps({"event": "mark", "name": ""}),
        json.dumps({"event": "mark", "name": "x" * 129}),
        json.dumps({"event": "dtmf", "digit": "12"}),
        json.dumps({"event": "start", "sample_rates": [16000]}),
        b"\x00",
        b"\x00" * (MAX_AUDIO_BYTES + 2),
        "{" + " " * MAX_TEXT_BYTES + "}",
    ],
)
def test_anything_off_protocol_is_a_protocol_error(message: str | bytes) -> None:
    codec, _ = started()
    with pytest.raises(MediaProtocolError):
        codec.parse(message)


@pytest.mark.parametrize(
    "message", [b"\x00\x00", json.dumps({"event": "mark", "name": "m"}), json.dumps({"event": "stop"})]
)
def test_nothing_but_start_comes_first(message: str | bytes) -> None:
    with pytest.raises(MediaProtocolError):
        BrowserCodec().parse(message)


def test_the_codec_is_strict_and_caps_messages() -> None:
    codec = BrowserCodec()
    assert codec.strict is True
    assert codec.max_message_bytes == MAX_AUDIO_BYTES


async def test_marks_echoed_by_the_page_tell_the_playout_what_was_heard() -> None:
    """The page echoes a mark when its playback reaches it; a barge-in then keeps exactly that."""
    codec, _ = started((16000,))
    sent: list[dict[str, object]] = []

    async def send(message: str) -> None:
        sent.append(json.loads(message))

    playout = Playout(codec, send, lead_ms=10_000)  # no pacing wait: everything goes out at once
    playout.start()
    playout.begin_segment("First sentence.")
    playout.push(b"\x00\x01" * 1600)  # 200 ms
    playout.end_segment()
    playout.begin_segment("Second sentence never heard.")
    playout.push(b"\x00\x01" * 1600)
    playout.end_segment()
    async with asyncio.timeout(5):
        while sum(1 for m in sent if m["event"] == "mark") < 2:
            await asyncio.sleep(0.01)
    marks = [str(m["name"]) for m in sent if m["event"] == "mark"]
    assert all(m["event"] in ("media", "mark") for m in sent)
    assert sum(len(base64.b64decode(str(m["audio"]))) for m in sent if m["event"] == "media") == 6400
    echo = codec.parse(json.dumps({"event": "mark", "name": marks[0]}))
    assert isinstance(echo, MediaMark)
    playout.on_mark(echo.name)
    assert playout.heard_text() == "First sentence."
    report = await playout.interrupt()
    assert report.text.startswith("First sentence.") and "never" not in report.text.split("sentence", 1)[0]
    assert report.full_text == "First sentence. Second sentence never heard."
    assert sent[-1] == {"event": "clear"}
    playout.on_mark(marks[1])  # the page echoes cleared marks: written off, not counted as heard
    await playout.close()
