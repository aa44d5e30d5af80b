"""Carriers, one folder each: config, REST client, webhook signatures, media codec, routes and the
:class:`~getpatter.carriers.base.Carrier` that ties them together. Nothing outside this package names a
carrier; a new one is a new folder plus its line in :data:`CREDENTIAL_ENV`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.carriers.host import CarrierHost

#: Each carrier's display name -> the environment variables its config needs (``patter doctor``).
CREDENTIAL_ENV: dict[str, tuple[str, ...]] = {
    "Twilio": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"),
    "Telnyx": ("TELNYX_API_KEY", "TELNYX_CONNECTION_ID"),
}


def add_softphone_routes(
    app: FastAPI, host: CarrierHost, *, token: str = "", allowed_hosts: Iterable[str] = ()
) -> None:
    """Mount the dashboard's "Call this agent" softphone (``carriers/browser``) on ``app``, served through
    ``host`` (the server's :class:`~getpatter.carriers.host.CarrierHost`) behind the dashboard's token.
    The neutral name lets the facade and the demo mount it without naming the in-page carrier."""
    from getpatter.carriers.browser.routes import add_browser_routes

    add_browser_routes(app, host, token=token, allowed_hosts=allowed_hosts)
