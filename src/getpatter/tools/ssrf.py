"""SSRF guard for webhook tools: a webhook URL may only reach the public internet.

Tool URLs come from configuration, but arguments the model chooses end up in the request, and a webhook
host may resolve anywhere, so before each request we resolve the host and refuse any address that is
loopback, private, link-local (cloud metadata lives at 169.254.169.254), multicast, reserved, unspecified
or otherwise not globally routable -- for IPv4 and IPv6, including IPv4 embedded in IPv6 (``::ffff:a.b.c.d``,
6to4, Teredo). Only ``http``/``https`` are allowed. ``allow_private=True`` lifts the address rule (local
development, tests against 127.0.0.1) but never the scheme rule.

The check resolves the name once and returns the addresses it checked; the webhook client connects to
those very addresses (``tools/_safe_transport.py``) instead of resolving the name again, so a hostile DNS
server cannot answer differently the second time (DNS rebinding). Redirects are not followed by the webhook
client, so a public endpoint cannot bounce a request inward.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from getpatter.errors import ErrorCode, PatterError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolve(host, port) -> addresses`` (strings); the default asks the event loop's resolver.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class WebhookBlockedError(PatterError):
    """The webhook URL is not allowed (scheme, or an address that is not public)."""

    default_code = ErrorCode.INPUT_VALIDATION


class WebhookResolveError(PatterError):
    """The webhook host could not be resolved (treated like a connection error: retryable)."""

    default_code = ErrorCode.CONNECTION


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, via ``loop.getaddrinfo`` (non-blocking)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_forbidden_address(address: IPAddress) -> bool:
    """True when a webhook must not be sent to ``address`` (see the module docstring)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # the socket really talks IPv4 to the embedded address
            return is_forbidden_address(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None and is_forbidden_address(embedded):
            return True
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id such as fe80::1%eth0


async def check_webhook_url(
    url: str, *, allow_private: bool = False, resolve: Resolver | None = None
) -> list[IPAddress]:
    """Raise :class:`WebhookBlockedError` unless ``url`` is http(s) and every resolved address is public;
    return the checked addresses (the only ones a connection may then use). With ``allow_private`` the
    host is not resolved and ``[]`` is returned.

    Raises :class:`WebhookResolveError` when the name does not resolve. Every address must pass, not just
    one: the connection may use any of them.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookBlockedError(f"webhook URL scheme {scheme or '(none)'!r} is not allowed; use http(s)")
    host = parts.hostname
    if not host:
        raise WebhookBlockedError("webhook URL has no host")
    if allow_private:
        return []
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise WebhookBlockedError(f"webhook host {host!r} is local; only public addresses are allowed")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise WebhookBlockedError("webhook URL has an invalid port") from None
    try:
        literal: IPAddress | None = _parse_address(name)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await (resolve or resolve_host)(host, port)
        except OSError as exc:
            raise WebhookResolveError(f"cannot resolve webhook host {host!r}: {exc}") from None
        try:
            addresses = [_parse_address(text) for text in found]
        except ValueError:
            raise WebhookBlockedError(f"webhook host {host!r} resolved to an unparseable address") from None
        if not addresses:
            raise WebhookResolveError(f"webhook host {host!r} resolved to no address")
    for address in addresses:
        if is_forbidden_address(address):
            raise WebhookBlockedError(
                f"webhook host {host!r} resolves to non-public address {address}; refused (SSRF guard)"
            )
    return addresses


__all__ = [
    "IPAddress",
    "Resolver",
    "WebhookBlockedError",
    "WebhookResolveError",
    "check_webhook_url",
    "is_forbidden_address",
    "resolve_host",
]
