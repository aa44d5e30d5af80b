"""TwiML builders: structure and escaping of hostile values."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from getpatter.carriers.twilio import twiml

HOSTILE = "\"/><Hangup/><Say a='x'>&amp; <![CDATA[ ]]>\n\t\x00\x1b\ud800 é"


def test_connect_stream_structure_and_parameters_round_trip() -> None:
    doc = twiml.connect_stream(
        "wss://agent.example.com/ws/stream/CA1",
        {"caller": "+15550001111", "evil": HOSTILE, HOSTILE: "v"},
        status_callback="https://agent.example.com/s?a=1&b=2",
    )
    assert doc.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(doc)
    assert root.tag == "Response"
    assert [c.tag for c in root] == ["Connect"]
    (stream,) = list(root[0])
    assert stream.tag == "Stream"
    assert stream.get("url") == "wss://agent.example.com/ws/stream/CA1"
    assert stream.get("statusCallback") == "https://agent.example.com/s?a=1&b=2"
    assert stream.get("statusCallbackMethod") == "POST"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    cleaned = HOSTILE.replace("\x00", "").replace("\x1b", "").replace("\ud800", "")
    assert params == {"caller": "+15550001111", "evil": cleaned, cleaned: "v"}
    assert len(root.findall(".//Hangup")) == 0


def test_connect_stream_without_params_or_callback() -> None:
    root = ET.fromstring(twiml.connect_stream("wss://h/ws/stream/outbound", {}))
    stream = root.find("Connect/Stream")
    assert stream is not None and stream.get("statusCallback") is None and list(stream) == []


@pytest.mark.parametrize("url", ["ws://h/x", "https://h/x", "wss://h/x?session=1", "/relative"])
def test_connect_stream_rejects_urls_twilio_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        twiml.connect_stream(url, {})


def test_dial_escapes_number_and_caller_id() -> None:
    root = ET.fromstring(twiml.dial("+15550003333", caller_id="+1555<0001111>\"'"))
    dial = root.find("Dial")
    assert dial is not None and dial.text == "+15550003333" and dial.get("callerId") == "+1555<0001111>\"'"
    root = ET.fromstring(twiml.dial("+1</Dial><Hangup/>"))
    assert [c.tag for c in root] == ["Dial"] and root[0].text == "+1</Dial><Hangup/>"
    assert ET.fromstring(twiml.dial("+15550003333")).find("Dial").get("callerId") is None  # type: ignore[union-attr]


def test_say_and_hangup_and_hangup() -> None:
    root = ET.fromstring(twiml.say_and_hangup(HOSTILE))
    assert [c.tag for c in root] == ["Say", "Hangup"]
    assert root[0].text == HOSTILE.replace("\x00", "").replace("\x1b", "").replace("\ud800", "")
    root = ET.fromstring(twiml.hangup())
    assert [c.tag for c in root] == ["Hangup"]


@pytest.mark.parametrize("reason", ["busy", "rejected"])
def test_reject_is_the_only_verb_so_twilio_never_answers(reason: str) -> None:
    root = ET.fromstring(twiml.reject(reason))
    assert root.tag == "Response" and [child.tag for child in root] == ["Reject"]
    assert root[0].attrib == {"reason": reason} and len(root[0]) == 0


def test_reject_takes_only_twilios_reasons() -> None:
    with pytest.raises(ValueError, match="must be 'busy' or 'rejected'"):
        twiml.reject("full")
