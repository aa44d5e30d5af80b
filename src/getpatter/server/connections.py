"""HTTP server limits: connection cap, header and keep-alive timeouts, concurrency, ``TCP_NODELAY``.

Every accepted connection (webhooks, dashboard, and media sockets, which start as HTTP upgrades) gets
``TCP_NODELAY``: the pre-bound listening socket's connections otherwise wait ~40 ms per keep-alive
response for Nagle and the peer's delayed ACK.

Idle connections cost the operator file descriptors, not the attacker: a connection must finish a request
head within ``header_timeout_s``, and past ``max_connections`` the oldest connection that is not serving
anything (no request head yet, or idle between keep-alive requests) is closed to make room; only when every
connection is busy is the new one refused. Settings come from the environment (``PATTER_MAX_CONNECTIONS``,
``PATTER_HEADER_TIMEOUT_S``, ``PATTER_KEEPALIVE_TIMEOUT_S``, ``PATTER_MAX_HEADER_BYTES``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from getpatter._ratelog import RateLimitedLog
from getpatter.settings import parse_positive

log = logging.getLogger("getpatter.server")

#: One warning per this many seconds about refused/evicted connections, with a count.
_WARN_INTERVAL_S = 10.0


def _default_max_connections() -> int:
    """Half the process's file-descriptor limit (calls need descriptors for their vendor sockets too)."""
    with contextlib.suppress(ValueError, OSError):
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft > 0:
            return max(32, min(4096, soft // 2))
    return 512


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Limits of the HTTP server that ``serve()`` runs (all configurable; defaults are sane for one box)."""

    #: Open connections (HTTP and WebSocket) at most; ``PATTER_MAX_CONNECTIONS``.
    max_connections: int = 0  # 0 = derived from the file-descriptor limit
    #: A new connection must send a whole request head within this; ``PATTER_HEADER_TIMEOUT_S``.
    header_timeout_s: float = 10.0
    #: An idle keep-alive connection is closed after this; ``PATTER_KEEPALIVE_TIMEOUT_S``.
    keepalive_timeout_s: float = 5.0
    #: A request head (request line + headers) larger than this is refused; ``PATTER_MAX_HEADER_BYTES``.
    max_header_bytes: int = 16 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerLimits:
        environ: Mapping[str, str] = os.environ if env is None else env
        return cls(
            max_connections=int(parse_positive(environ.get("PATTER_MAX_CONNECTIONS"), 0)),
            header_timeout_s=parse_positive(environ.get("PATTER_HEADER_TIMEOUT_S"), 10.0),
            keepalive_timeout_s=parse_positive(environ.get("PATTER_KEEPALIVE_TIMEOUT_S"), 5.0),
            max_header_bytes=int(parse_positive(environ.get("PATTER_MAX_HEADER_BYTES"), 16 * 1024)),
        )

    @property
    def connection_cap(self) -> int:
        return self.max_connections if self.max_connections > 0 else _default_max_connections()

    def uvicorn_options(self) -> dict[str, Any]:
        """Options for ``uvicorn.Config``: the guarded protocol, keep-alive, head size, concurrency."""
        return {
            "http": guarded_protocol(self),
            "timeout_keep_alive": max(1, round(self.keepalive_timeout_s)),
            "h11_max_incomplete_event_size": self.max_header_bytes,
            # Requests (and live sockets) at once; connections are capped below it by the guard.
            "limit_concurrency": self.connection_cap + 1,
            "backlog": min(2048, self.connection_cap),
        }


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Counter:
    """Counts connections closed at the cap; logged through a :class:`RateLimitedLog` (no log flood)."""

    def __init__(self) -> None:
        self.evicted = 0
        self.refused = 0
        self._log = RateLimitedLog(
            log,
            "connection cap reached (idle connections evicted first; raise PATTER_MAX_CONNECTIONS if this "
            "is real traffic)",
            interval_s=_WARN_INTERVAL_S,
        )

    def note(self, evicted: bool) -> None:
        if evicted:
            self.evicted += 1
        else:
            self.refused += 1
        self._log("evicted an idle connection" if evicted else "refused a new connection")


def guarded_protocol(limits: ServerLimits) -> type[H11Protocol]:
    """An h11 protocol class (bounded request heads) with the connection guard of ``limits``."""
    cap = limits.connection_cap
    counter = _Counter()

    class GuardedH11Protocol(H11Protocol):
        stats = counter

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            set_nodelay(transport)
            super().connection_made(transport)
            self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
                limits.header_timeout_s, self._head_timeout
            )
            if len(self.connections) > cap:
                victim = _idle_victim(self.connections, self)
                counter.note(evicted=victim is not None)
                (victim or self).transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def _head_timeout(self) -> None:
            self._head_timer = None
            if self.cycle is None and not self.transport.is_closing() and _owns(self):
                self.transport.close()

    return GuardedH11Protocol


def _owns(protocol: Any) -> bool:
    """``False`` once the connection was upgraded to a WebSocket (its own protocol then owns it)."""
    getter = getattr(protocol.transport, "get_protocol", None)
    return getter is None or getter() is protocol


def _idle_victim(connections: set[Any], newcomer: Any) -> Any | None:
    """The first connection serving nothing: no request head yet, or idle between keep-alive requests."""
    for protocol in connections:
        if protocol is newcomer or not isinstance(protocol, H11Protocol) or not _owns(protocol):
            continue
        transport = getattr(protocol, "transport", None)
        if transport is None or transport.is_closing():
            continue
        cycle = protocol.cycle
        if cycle is None or cycle.response_complete:
            return protocol
    return None
