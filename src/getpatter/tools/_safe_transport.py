"""Webhook-tool connections go only to addresses the SSRF guard checked: no DNS rebinding.

The guard (``ssrf.check_webhook_url``) resolves the webhook host once and checks every address; the
:class:`PinnedBackend` then connects to one of *those* addresses instead of resolving the name again, so a
hostile DNS server cannot answer "public" to the check and "127.0.0.1" to the connection. The request
keeps its URL, so the ``Host`` header and the TLS server name (SNI, certificate check) are still the
original host name.

A connection to a host:port nobody checked is refused (``httpcore.ConnectError``): a pool on this backend
can only reach what :meth:`PinnedBackend.pin` allowed. With ``pinning=False`` (``allow_private``, local
development) nothing is checked, and the backend resolves normally.

The webhook client is still a :func:`getpatter._pool.pooled_client` (stale keep-alive connections are
retried once on a fresh one): :meth:`PinnedBackend.transport` is the transport factory it builds each of
its pools with (its kept-alive sub-pools and the retry's), so the retry's fresh connection is pinned too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import httpcore
import httpx

from getpatter._pool import shared_ssl_context
from getpatter.tools.ssrf import IPAddress

__all__ = ["PinnedBackend"]


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects ``host:port`` to its pinned addresses (tried in order), never resolving ``host``."""

    def __init__(self, *, pinning: bool = True) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}
        self._pinning = pinning

    def pin(self, host: str, port: int, addresses: Sequence[IPAddress]) -> None:
        """Allow connections to ``host:port`` at these (checked) addresses, and only these."""
        self._pins[(host.lower().rstrip("."), port)] = tuple(str(address) for address in addresses)

    def transport(self, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
        """An ``httpx`` transport (no proxies from the environment) whose pool connects through this
        backend; the factory :func:`getpatter._pool.pooled_client` takes."""
        tls = shared_ssl_context(trust_env=False)
        transport = httpx.AsyncHTTPTransport(verify=tls, trust_env=False, limits=limits)
        # httpx takes no network backend argument: build its connection pool the same way, with ours.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self,
        )
        return transport

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if not self._pinning:
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = self._pins.get((host.lower().rstrip("."), port))
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} was not checked by the SSRF guard; not connecting")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhook tools do not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
