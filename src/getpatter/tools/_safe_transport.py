"""An httpx transport that connects only to addresses the SSRF guard checked: no DNS rebinding.

The guard (``ssrf.check_webhook_url``) resolves the webhook host once and checks every address; this
transport's network backend then connects to one of *those* addresses instead of resolving the name again,
so a hostile DNS server cannot answer "public" to the check and "127.0.0.1" to the connection. The
request keeps its URL, so the ``Host`` header and the TLS server name (SNI, certificate check) are still
the original host name.

A connection to a host:port nobody checked is refused (``httpcore.ConnectError``): the pool can only
reach what :meth:`PinnedTransport.pin` allowed. With ``allow_private`` (local development) nothing is
checked, and the backend resolves normally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import httpcore
import httpx

from getpatter.tools.ssrf import IPAddress

__all__ = ["PinnedTransport"]


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects ``host:port`` to its pinned addresses (tried in order), never resolving ``host``."""

    def __init__(self, *, pinning: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}
        self._pinning = pinning

    def pin(self, host: str, port: int, addresses: Sequence[IPAddress]) -> None:
        self._pins[(host.lower().rstrip("."), port)] = tuple(str(address) for address in addresses)

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


class PinnedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` (no proxies from the environment) whose connections go only to the
    addresses given to :meth:`pin` for the request's host and port."""

    def __init__(self, *, allow_private: bool = False) -> None:
        super().__init__(trust_env=False)
        self._backend = _PinnedBackend(pinning=not allow_private)
        # httpx takes no network backend argument: build its connection pool the same way, with ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=self._backend,
        )

    def pin(self, host: str, port: int, addresses: Sequence[IPAddress]) -> None:
        """Allow connections to ``host:port`` at these (checked) addresses."""
        self._backend.pin(host, port, addresses)
