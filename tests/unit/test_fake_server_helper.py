import httpx
import websockets
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tests.fakes.server import running


async def _hello(request):  # type: ignore[no-untyped-def]
    return JSONResponse({"ok": True})


async def _echo(ws: WebSocket) -> None:
    await ws.accept()
    msg = await ws.receive_text()
    await ws.send_text(msg.upper())
    await ws.close()


async def test_running_serves_http_and_websocket_on_loopback() -> None:
    app = Starlette(routes=[Route("/hi", _hello), WebSocketRoute("/ws", _echo)])
    async with running(app) as srv:
        assert srv.host == "127.0.0.1" and srv.port > 0
        async with httpx.AsyncClient() as client:
            assert (await client.get(srv.http_url + "/hi")).json() == {"ok": True}
        async with websockets.connect(srv.ws_url + "/ws") as ws:
            await ws.send("abc")
            assert await ws.recv() == "ABC"
