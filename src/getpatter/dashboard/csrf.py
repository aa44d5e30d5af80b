"""Cross-site protection for a dashboard without a token (the loopback default, and ``getpatter
dashboard`` unless given one).

A token-less dashboard trusts "whoever can reach 127.0.0.1", which a web page in the owner's browser can
also do: a cross-site ``text/plain`` form POST needs no CORS preflight (CSRF: delete calls, ingest fake
ones), and a DNS-rebinding page reaches it under its own host name. So, when no token is set:

* every request must carry a ``Host`` that is a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``,
  any port) or one of ``allowed_hosts`` (``PATTER_DASHBOARD_ALLOWED_HOSTS``, comma-separated) -> else 403;
* a state-changing request (anything but GET/HEAD/OPTIONS) must not come from another origin (``Origin``
  present and not this host, or ``Sec-Fetch-Site: cross-site``/``same-site``) and, when it has a body,
  must declare ``application/json`` (no form or ``text/plain`` posts) -> else 403.

With a token, the token itself is the protection (a page on another site cannot know it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from getpatter._ratelog import RateLimitedLog

log = logging.getLogger("getpatter.dashboard")

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _host_name(host: str) -> str:
    """``Host`` header -> lowercase name without the port (``[::1]:8000`` -> ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def env_allowed_hosts() -> list[str]:
    raw = os.environ.get("PATTER_DASHBOARD_ALLOWED_HOSTS", "")
    return [h.strip() for h in raw.split(",") if h.strip()]


def is_loopback_name(name: str) -> bool:
    return name in _LOOPBACK_NAMES or name.startswith("127.")


def same_origin_guard(token: str, allowed_hosts: Iterable[str] = ()) -> Callable[[Request], None]:
    """A FastAPI dependency enforcing the rules above when ``token`` is empty (no-op with a token)."""
    allowed = {_host_name(h) for h in [*allowed_hosts, *env_allowed_hosts()]}
    refused = RateLimitedLog(log, "dashboard request refused (no token: cross-site or unknown Host)")

    def deny(reason: str) -> None:
        refused(reason)
        raise HTTPException(status_code=403, detail="Forbidden: " + reason)

    def check(request: Request) -> None:
        if token:
            return
        host = _host_name(request.headers.get("host", ""))
        if not (is_loopback_name(host) or host in allowed):
            deny(f"unknown Host {host[:80]!r} (set a dashboard token or PATTER_DASHBOARD_ALLOWED_HOSTS)")
        if request.method.upper() in _SAFE_METHODS:
            return
        origin = request.headers.get("origin")
        if origin is not None and (origin == "null" or _host_name(urlsplit(origin).netloc) != host):
            deny("cross-origin request")
        if request.headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
            deny("cross-site request")
        has_body = request.headers.get("content-length", "0") not in ("", "0") or (
            "transfer-encoding" in request.headers
        )
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if has_body and media != "application/json":
            deny("state-changing requests need Content-Type: application/json")

    return check


__all__ = ["env_allowed_hosts", "same_origin_guard"]
