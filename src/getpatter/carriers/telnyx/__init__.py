"""The Telnyx carrier: configuration, Call Control REST, Ed25519 webhook signatures, the media codec.

``Carrier`` is the namespaced name (``getpatter.carriers.telnyx.Carrier``). Only the configuration is
imported eagerly; the REST client, codec and signature check load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from getpatter._lazy import lazy_exports
from getpatter.carriers.telnyx.config import Telnyx

if TYPE_CHECKING:
    from getpatter.carriers.telnyx.media import TelnyxMediaCodec
    from getpatter.carriers.telnyx.rest import TelnyxApiError, TelnyxCallControl, TelnyxRestClient
    from getpatter.carriers.telnyx.signature import verify_webhook

Carrier = Telnyx
__getattr__, __dir__ = lazy_exports(
    globals(),
    {
        "TelnyxMediaCodec": "getpatter.carriers.telnyx.media",
        "TelnyxApiError": "getpatter.carriers.telnyx.rest",
        "TelnyxCallControl": "getpatter.carriers.telnyx.rest",
        "TelnyxRestClient": "getpatter.carriers.telnyx.rest",
        "verify_webhook": "getpatter.carriers.telnyx.signature",
    },
)

__all__ = [
    "Carrier",
    "Telnyx",
    "TelnyxApiError",
    "TelnyxCallControl",
    "TelnyxMediaCodec",
    "TelnyxRestClient",
    "verify_webhook",
]
