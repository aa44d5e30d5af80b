"""Each carrier names the webhooks that report on a placed call, and the call id in one (fleet routing)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from getpatter import Telnyx, Twilio
from getpatter.carriers.telnyx.carrier import VOICE_PATH as TELNYX_VOICE
from getpatter.carriers.twilio.carrier import AMD_PATH, RECORDING_PATH, STATUS_PATH, VOICE_PATH

SID = "CA" + "1" * 32


def test_twilio_routes_status_amd_and_recording_callbacks_by_their_call_sid() -> None:
    carrier = Twilio("AC" + "0" * 32, "token").build_carrier()
    assert set(carrier.progress_paths()) == {STATUS_PATH, AMD_PATH, RECORDING_PATH}
    assert VOICE_PATH not in carrier.progress_paths()  # an inbound call has no owner to route to
    body = urlencode({"CallSid": SID, "CallStatus": "completed"}).encode()
    assert carrier.progress_call_id(STATUS_PATH, body) == SID
    assert carrier.progress_call_id(STATUS_PATH, b"CallSid=not-a-sid") == ""
    assert carrier.progress_call_id(STATUS_PATH, b"\xff\xfe garbage") == ""


def test_telnyx_routes_call_events_by_their_call_control_id() -> None:
    carrier = Telnyx(
        api_key="KEY" + "0" * 20, connection_id="123", allow_unsigned_webhooks=True
    ).build_carrier()
    assert carrier.progress_paths() == (TELNYX_VOICE,)
    event = {"data": {"event_type": "call.hangup", "payload": {"call_control_id": "v3:abc"}}}
    assert carrier.progress_call_id(TELNYX_VOICE, json.dumps(event).encode()) == "v3:abc"
    for bad in (b"not json", b"[]", b'{"data": {"payload": {"call_control_id": 7}}}', b'{"data": 3}'):
        assert carrier.progress_call_id(TELNYX_VOICE, bad) == ""
