"""Dashboard access: the bearer token check and the rule that an exposed dashboard needs one (API.md B.2).

A token travels as ``Authorization: Bearer <token>`` or as ``?token=<token>`` (the browser's EventSource
and download links cannot set headers). Comparison is constant-time. An empty token means the dashboard
is open, which is only the default while nothing but this machine can reach it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable

from fastapi import HTTPException, Request

from getpatter.errors import PatterTypeError
from getpatter.validation import is_loopback_host

log = logging.getLogger("getpatter.dashboard")

UNAUTHORIZED_DETAIL = "Unauthorized"


def presented_token(request: Request) -> str:
    """The token a request carries: the ``Authorization: Bearer`` header, else ``?token=``, else ``""``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token", "")


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time equality of two tokens (compared as UTF-8 bytes, so any text is safe)."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def is_authorized(request: Request, token: str) -> bool:
    """True when ``token`` is empty (open dashboard) or the request presents exactly it."""
    return not token or token_matches(presented_token(request), token)


def require_token(token: str) -> Callable[[Request], None]:
    """A FastAPI dependency that answers 401 ``{"detail": "Unauthorized"}`` unless the request is
    authorized for ``token``."""

    def check(request: Request) -> None:
        if not is_authorized(request, token):
            raise HTTPException(
                status_code=401, detail=UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
            )

    return check


def is_exposed(*, bind_host: str, webhook_host: str) -> bool:
    """True when the server may be reachable from other machines: it binds a non-loopback address, or
    its public webhook host (or tunnel host) is not loopback. An empty webhook host counts as local."""
    if bind_host and not is_loopback_host(bind_host):
        return True
    return bool(webhook_host) and not is_loopback_host(webhook_host)


def resolve_dashboard_token(
    token: str, *, bind_host: str, webhook_host: str, allow_insecure: bool = False
) -> str:
    """The token the dashboard will require (API.md B.2 exposure rule).

    A given token always wins. Without one, an exposed server (see :func:`is_exposed`) gets a fresh
    random token unless ``allow_insecure`` is set; a local-only server stays open (``""``). The caller
    prints ``http://127.0.0.1:<port>/?token=...`` so the owner can open it.
    """
    if not isinstance(token, str):
        raise PatterTypeError(f"dashboard_token must be a str, got {type(token).__name__}")
    if token:
        return token
    if allow_insecure or not is_exposed(bind_host=bind_host, webhook_host=webhook_host):
        return ""
    log.info("dashboard is reachable from other machines and has no token; generated one")
    return secrets.token_urlsafe(24)


__all__ = [
    "UNAUTHORIZED_DETAIL",
    "is_authorized",
    "is_exposed",
    "presented_token",
    "require_token",
    "resolve_dashboard_token",
    "token_matches",
]
