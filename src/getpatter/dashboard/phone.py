"""The dashboard's "Call this agent" softphone: its page assets, its settings and the guard on its socket.

The page (``static/phone.js``, ``static/phone-worklet.js``) turns the browser into the caller; the media
socket it opens is handed to ``on_socket`` (the in-page carrier, ``carriers/browser``) once the upgrade has
passed the dashboard's own rules: with a dashboard token, the socket must present it (``?token=``: a
browser cannot set headers on a WebSocket); without one (loopback only), it must come from this machine's
own page, because any web site the owner visits may open a WebSocket to 127.0.0.1 (``Origin`` must name
the ``Host``, and the ``Host`` must be loopback or allowed, as ``dashboard/csrf.py`` requires of requests).
A refused upgrade is closed before it is accepted (HTTP 403), so no call or vendor connection starts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from getpatter._ratelog import RateLimitedLog
from getpatter.dashboard.auth import require_token, token_matches
from getpatter.dashboard.csrf import _host_name, env_allowed_hosts, is_loopback_name, same_origin_guard

log = logging.getLogger("getpatter.dashboard")

#: Where the page finds its settings (404 when no softphone is mounted: the page then hides the button).
SETTINGS_PATH = "/api/dashboard/phone"
#: The media socket the page opens.
SOCKET_PATH = "/api/dashboard/phone/socket"
_ASSETS = {"/dashboard/phone.js": "phone.js", "/dashboard/phone-worklet.js": "phone-worklet.js"}
_ASSET_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}

SocketHandler = Callable[[WebSocket], Awaitable[None]]


@cache
def asset(name: str) -> str:
    """One of the softphone's static scripts, read once from the package data."""
    return (resources.files("getpatter.dashboard") / "static" / name).read_text(encoding="utf-8")


def socket_refusal(websocket: WebSocket, token: str, allowed_hosts: Iterable[str] = ()) -> str:
    """Why the upgrade must be refused (``""``: let it through)."""
    if token:
        return (
            "" if token_matches(websocket.query_params.get("token", ""), token) else "missing or wrong token"
        )
    host = _host_name(websocket.headers.get("host", ""))
    allowed = {_host_name(h) for h in [*allowed_hosts, *env_allowed_hosts()]}
    if not (is_loopback_name(host) or host in allowed):
        return f"unknown Host {host[:80]!r}"
    origin = websocket.headers.get("origin", "")
    if not origin or _host_name(urlsplit(origin).netloc) != host:
        return f"Origin {origin[:80]!r} is not this dashboard"
    return ""


def _script(name: str) -> Callable[[], Awaitable[Response]]:
    async def script() -> Response:
        return Response(asset(name), media_type="text/javascript; charset=utf-8", headers=_ASSET_HEADERS)

    return script


def add_phone_routes(
    app: FastAPI,
    on_socket: SocketHandler,
    *,
    token: str = "",
    allowed_hosts: Iterable[str] = (),
    sample_rates: Sequence[int] = (24000, 16000),
) -> None:
    """Mount the softphone on ``app``: settings and scripts behind the dashboard's guards, and the media
    socket, which is passed to ``on_socket`` (not yet accepted) once :func:`socket_refusal` lets it in."""
    hosts = list(allowed_hosts)
    guards = [Depends(require_token(token)), Depends(same_origin_guard(token, hosts))]
    router = APIRouter(dependencies=guards)
    refused = RateLimitedLog(log, "softphone socket refused")

    @router.get(SETTINGS_PATH, include_in_schema=False)
    async def settings() -> JSONResponse:
        body = {"enabled": True, "socket": SOCKET_PATH, "sample_rates": list(sample_rates)}
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    for path, name in _ASSETS.items():
        router.add_api_route(path, _script(name), methods=["GET"], include_in_schema=False)

    app.include_router(router)

    @app.websocket(SOCKET_PATH)
    async def socket(websocket: WebSocket) -> None:
        reason = socket_refusal(websocket, token, hosts)
        if reason:
            refused(reason)
            await websocket.close(code=1008)  # before accept: the upgrade is answered 403
            return
        await on_socket(websocket)


__all__ = ["SETTINGS_PATH", "SOCKET_PATH", "add_phone_routes", "asset", "socket_refusal"]
