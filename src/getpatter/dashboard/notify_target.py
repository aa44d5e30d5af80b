"""Where ``Patter`` posts its calls for a standalone dashboard (``dashboard/notify.py`` does the posting).

``Patter(dashboard_notify=...)``, else ``PATTER_DASHBOARD_NOTIFY``:

* unset / ``True`` / ``1``/``true``/``yes``/``on``: ``http://127.0.0.1:8000`` (the dashboard's default port);
* ``False`` / ``0``/``false``/``no``/``off``: off;
* a port (``8123``) or a URL (``http://127.0.0.1:8123/?token=...``, exactly what ``patter dashboard``
  prints): that dashboard, authenticated with the URL's ``token`` as a Bearer token.

Plain ``http`` is only allowed to a loopback host (transcripts are personal data); use ``https`` for a
dashboard on another machine. No HTTP client is imported here, so ``Patter()`` stays cheap to build.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from getpatter.errors import PatterConfigError
from getpatter.settings import parse_enabled

log = logging.getLogger("getpatter.dashboard")

DEFAULT_DASHBOARD_PORT = 8000
INGEST_PATH = "/api/dashboard/ingest"
_ON = frozenset({"1", "true", "yes", "on"})

__all__ = ["DEFAULT_DASHBOARD_PORT", "INGEST_PATH", "NotifyTarget", "resolve_notify_target"]


@dataclass(frozen=True, slots=True)
class NotifyTarget:
    """A standalone dashboard to post to. ``token`` is never part of ``repr`` or the logs."""

    url: str  # the ingest URL
    token: str = ""

    def __repr__(self) -> str:
        return f"NotifyTarget(url={self.url!r}, token={'***' if self.token else ''!r})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _from_port(port: int, where: str) -> NotifyTarget:
    if not 1 <= port <= 65535:
        raise PatterConfigError(
            f"{where}={port}: a port must be 1-65535. Fix: the port `patter dashboard` uses."
        )
    return NotifyTarget(f"http://127.0.0.1:{port}{INGEST_PATH}")


def _from_url(text: str, where: str) -> NotifyTarget:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PatterConfigError(
            f"{where}={text!r} is not a dashboard URL. Fix: the URL `patter dashboard` prints, e.g. "
            "'http://127.0.0.1:8000/?token=...', or a port number, or False to turn notifying off."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise PatterConfigError(
            f"{where}: plain http to {parts.hostname!r} would send call transcripts unencrypted. Fix: use "
            "https:// for a dashboard on another machine, or 127.0.0.1."
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise PatterConfigError(f"{where}: bad port in the URL ({exc}).") from None
    token = (parse_qs(parts.query).get("token") or [""])[0]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port else host
    return NotifyTarget(f"{parts.scheme}://{netloc}{INGEST_PATH}", token)


def resolve_notify_target(
    value: bool | int | str | None = None, env: Mapping[str, str] | None = None
) -> NotifyTarget | None:
    """The dashboard ``Patter(dashboard_notify=value)`` posts to (``None`` = off); see the module doc.

    ``value=None`` reads ``PATTER_DASHBOARD_NOTIFY``; a value the environment gives that is not
    understood turns notifying off with a warning (a bad deploy knob must not stop the server), while a
    bad ``value`` raises ``PatterConfigError``.
    """
    if value is None:
        raw = (os.environ if env is None else env).get("PATTER_DASHBOARD_NOTIFY")
        text = (raw or "").strip()
        if raw is None or text.lower() in _ON:
            return _from_port(DEFAULT_DASHBOARD_PORT, "PATTER_DASHBOARD_NOTIFY")
        if not parse_enabled(text):
            return None
        try:
            return (
                _from_port(int(text), "PATTER_DASHBOARD_NOTIFY")
                if text.isdigit()
                else _from_url(text, "PATTER_DASHBOARD_NOTIFY")
            )
        except PatterConfigError as exc:
            log.warning("standalone dashboard notify off: %s", exc)
            return None
    if isinstance(value, bool):
        return _from_port(DEFAULT_DASHBOARD_PORT, "dashboard_notify") if value else None
    if isinstance(value, int):
        return _from_port(value, "dashboard_notify")
    if isinstance(value, str):
        return _from_url(value.strip(), "dashboard_notify")
    raise PatterConfigError(
        f"dashboard_notify must be True/False, a port or a dashboard URL, got {type(value).__name__}."
    )
