"""The client address of a request: the TCP peer, or ``X-Forwarded-For`` when the peer is a trusted proxy.

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the direct peer
is a proxy the operator named in ``PATTER_TRUSTED_PROXIES`` (comma-separated CIDRs or addresses, e.g.
``10.0.0.0/8,127.0.0.1``). Then the header is read right to left, skipping trusted proxies: the first
untrusted address is the client (anything left of it may be forged by that client). Without the variable
the header is ignored and the peer is the client.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from getpatter.errors import PatterConfigError

__all__ = ["ENV_TRUSTED_PROXIES", "TrustedProxies"]

ENV_TRUSTED_PROXIES = "PATTER_TRUSTED_PROXIES"
#: A forwarded chain longer than this is not walked further (the peer's own view is used).
_MAX_HOPS = 32

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:1234"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed (none by default)."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> TrustedProxies:
        """Parse ``PATTER_TRUSTED_PROXIES``; raises :class:`PatterConfigError` naming a bad entry."""
        networks: list[Network] = []
        for part in (raw or "").split(","):
            entry = part.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise PatterConfigError(
                    f"{ENV_TRUSTED_PROXIES} entry {entry!r} is not an IP address or CIDR. Fix: list your "
                    "proxies' addresses, e.g. PATTER_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1"
                ) from None
        return cls(tuple(networks))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrustedProxies:
        env = os.environ if environ is None else environ
        return cls.parse(env.get(ENV_TRUSTED_PROXIES))

    def trusts(self, address: str) -> bool:
        ip = _address(address)
        return ip is not None and any(ip in network for network in self.networks)

    def client_ip(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address for a request from ``peer`` carrying these ``X-Forwarded-For`` values."""
        if not self.networks or not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
        walked = [_address(hop) for hop in hops[-_MAX_HOPS:]]
        for ip in reversed(walked):
            if ip is None:
                return peer  # garbage in the chain: do not guess
            if not any(ip in network for network in self.networks):
                return str(ip)
        first = walked[0] if walked else None
        return str(first) if first is not None else peer  # every hop a trusted proxy
