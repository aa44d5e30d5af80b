"""Carriers, one folder each: config, REST client, webhook signatures, media codec, routes and the
:class:`~getpatter.carriers.base.Carrier` that ties them together. Nothing outside this package names a
carrier; a new one is a new folder plus its line in :data:`CREDENTIAL_ENV`.
"""

from __future__ import annotations

#: Each carrier's display name -> the environment variables its config needs (``patter doctor``).
CREDENTIAL_ENV: dict[str, tuple[str, ...]] = {
    "Twilio": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"),
    "Telnyx": ("TELNYX_API_KEY", "TELNYX_CONNECTION_ID"),
}
