"""The Twilio carrier: configuration, REST control, webhook signatures, TwiML and the media-stream codec.

``Carrier`` is the namespaced alias of :class:`Twilio` (``getpatter.carriers.twilio.Carrier``). Only the
configuration is imported eagerly; the REST client (httpx) and codec load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from getpatter._lazy import lazy_exports
from getpatter.carriers.twilio.config import Twilio

if TYPE_CHECKING:
    from getpatter.carriers.twilio.media import TwilioMediaCodec
    from getpatter.carriers.twilio.rest import TwilioApiError, TwilioCallControl, TwilioRestClient
    from getpatter.carriers.twilio.signature import compute_signature, verify_signature

Carrier = Twilio
__getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "TwilioMediaCodec": "getpatter.carriers.twilio.media",
        "TwilioApiError": "getpatter.carriers.twilio.rest",
        "TwilioCallControl": "getpatter.carriers.twilio.rest",
        "TwilioRestClient": "getpatter.carriers.twilio.rest",
        "compute_signature": "getpatter.carriers.twilio.signature",
        "verify_signature": "getpatter.carriers.twilio.signature",
    },
)

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
