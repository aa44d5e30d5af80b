"""The Twilio carrier: configuration, REST control, webhook signatures, TwiML and the media-stream codec.

``Carrier`` is the namespaced alias of :class:`Twilio` (``getpatter.carriers.twilio.Carrier``).
"""

from __future__ import annotations

from getpatter.carriers.twilio.config import Twilio
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.carriers.twilio.rest import TwilioApiError, TwilioCallControl, TwilioRestClient
from getpatter.carriers.twilio.signature import compute_signature, verify_signature

Carrier = Twilio

__all__ = [
    "Carrier",
    "Twilio",
    "TwilioApiError",
    "TwilioCallControl",
    "TwilioMediaCodec",
    "TwilioRestClient",
    "compute_signature",
    "verify_signature",
]
