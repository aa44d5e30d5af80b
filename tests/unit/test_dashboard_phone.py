"""The softphone's routes on a dashboard: who may open its socket, and what the page can load."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from getpatter.dashboard.phone import SOCKET_PATH, add_phone_routes
from tests.fakes.server import Running, running


async def accepted(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("in")
    await websocket.close()


@pytest.fixture
async def open_board() -> AsyncIterator[Running]:
    app = FastAPI()
    add_phone_routes(app, accepted)
    async with running(app) as srv:
        yield srv


async def status_of(url: str, **kwargs: object) -> int:
    try:
        async with connect(url, **kwargs) as ws:
            assert await ws.recv() == "in"
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_an_open_dashboard_takes_sockets_from_its_own_page_only(open_board: Running) -> None:
    url = open_board.ws_url + SOCKET_PATH
    own = f"http://127.0.0.1:{open_board.port}"
    assert await status_of(url, origin=own) == 101
    assert await status_of(url, origin="https://evil.example") == 403  # any site the owner visits
    assert await status_of(url, origin="null") == 403
    assert await status_of(url) == 403  # no Origin: not a browser page of ours
    rebound = {"Host": f"evil.example:{open_board.port}"}
    assert (
        await status_of(url, origin=f"http://evil.example:{open_board.port}", additional_headers=rebound)
        == 403
    )


async def test_with_a_token_the_socket_needs_it_and_the_scripts_too() -> None:
    app = FastAPI()
    add_phone_routes(app, accepted, token="s3cret", sample_rates=(16000,))
    async with running(app) as srv, httpx.AsyncClient() as client:
        url = srv.ws_url + SOCKET_PATH
        assert await status_of(url) == 403
        assert await status_of(url + "?token=nope") == 403
        assert await status_of(url + "?token=s3cret") == 101
        for path in ("/api/dashboard/phone", "/dashboard/phone.js", "/dashboard/phone-worklet.js"):
            assert (await client.get(srv.http_url + path)).status_code == 401
        settings = (await client.get(srv.http_url + "/api/dashboard/phone?token=s3cret")).json()
        assert settings == {"enabled": True, "socket": SOCKET_PATH, "sample_rates": [16000]}
        script = await client.get(srv.http_url + "/dashboard/phone-worklet.js?token=s3cret")
        assert script.headers["content-type"].startswith("text/javascript")
        assert script.headers["x-content-type-options"] == "nosniff"
        assert 'registerProcessor("patter-phone"' in script.text
        page = await client.get(srv.http_url + "/dashboard/phone.js?token=s3cret&name=../index.html")
        assert "patterDashboard" in page.text  # a query cannot pick another file
