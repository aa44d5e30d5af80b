"""Mount the in-page caller: the dashboard's softphone page and socket, run as calls of this carrier."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from getpatter.carriers.browser.codec import KIND, SAMPLE_RATES, BrowserCodec
from getpatter.dashboard.phone import add_phone_routes

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.websockets import WebSocket

    from getpatter.carriers.host import CarrierHost


def add_browser_routes(
    app: FastAPI, host: CarrierHost, *, token: str = "", allowed_hosts: Iterable[str] = ()
) -> None:
    """The softphone on ``app``, behind the dashboard's token (``token``; ``""``: loopback only, checked
    on ``Host`` and ``Origin``). Each socket the page opens becomes one inbound call through the server's
    usual call path, reported with carrier ``"browser"``."""

    async def on_socket(websocket: WebSocket) -> None:
        await host.run_trusted_media(websocket, BrowserCodec(), carrier=KIND)

    rates = sorted(SAMPLE_RATES, reverse=True)
    add_phone_routes(app, on_socket, token=token, allowed_hosts=allowed_hosts, sample_rates=rates)
