"""Fake Twilio for tests: REST API, signed webhooks and the media-stream side of calls.

Split in two modules; import from here:

* ``tests/fakes/twilio_rest.py``: ``FakeTwilio`` (REST routes on ``fake.app``, ``start_inbound_call``,
  ``answer_call``, ``post_voice_webhook``, ``send_status_callback``, ``inject_error``, ``aclose``).
* ``tests/fakes/twilio_media.py``: ``FakeCall`` (caller actions, playback-buffer model, recordings of what
  the server sent, waits).
"""

from tests.fakes.twilio_media import (
    FRAME_BYTES,
    MULAW_SILENCE,
    EchoedMark,
    FakeCall,
    Received,
    pcm16_16k_to_mulaw_8k,
    tone_pcm16_16k,
)
from tests.fakes.twilio_rest import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    FakeTwilio,
    FakeTwilioError,
    RecordedRequest,
    new_sid,
    parse_connect_stream,
    twilio_signature,
)

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "FRAME_BYTES",
    "MULAW_SILENCE",
    "EchoedMark",
    "FakeCall",
    "FakeTwilio",
    "FakeTwilioError",
    "Received",
    "RecordedRequest",
    "new_sid",
    "parse_connect_stream",
    "pcm16_16k_to_mulaw_8k",
    "tone_pcm16_16k",
    "twilio_signature",
]
