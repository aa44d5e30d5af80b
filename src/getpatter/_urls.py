"""Provider endpoints from a user's ``base_url``: one scheme table, one way to join a path.

Every provider takes ``base_url`` (the vendor's origin, or a fake server's in tests) in whichever scheme
is natural to type; WebSocket clients swap http->ws / https->wss, REST calls beside them swap back, and the
vendor's fixed path is appended to any path prefix the URL carries (trailing ``/`` stripped, so paths join
with exactly one slash). A value that is not an http/https/ws/wss URL is a :class:`PatterConfigError`
whose message, given by the caller, names the parameter and an example.
"""

from __future__ import annotations

from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

from getpatter.errors import PatterConfigError

_TO_WS: Final = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_TO_HTTP: Final = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def endpoint(
    base_url: str, path: str, *, scheme: Literal["ws", "http"], bad_url: str, query: str = ""
) -> str:
    """``base_url`` in the ``scheme`` family (``ws``: ws/wss, ``http``: http/https) + ``path`` (+ ``?query``).

    Raises :class:`PatterConfigError` with the message ``bad_url`` when ``base_url`` is not a URL of one of
    the four schemes."""
    parts = urlsplit(base_url)
    mapped = (_TO_WS if scheme == "ws" else _TO_HTTP).get(parts.scheme.lower())
    if mapped is None or not parts.netloc:
        raise PatterConfigError(bad_url)
    return urlunsplit((mapped, parts.netloc, parts.path.rstrip("/") + path, query, ""))
