"""Per-client-IP cap on concurrent *unauthenticated* media sockets (API.md B.1).

A socket counts from its upgrade until its stream token is verified on ``start`` (then it is a call, and
the process's admission limit decides); sockets for a call the server just answered are not counted.
Keyed on the client address of ``server/client_address.py``: the TCP peer, or ``X-Forwarded-For`` when
the peer is in ``PATTER_TRUSTED_PROXIES``. ``PATTER_MAX_SOCKETS_PER_IP`` sets it (default 10; 0 = no cap).
"""

from __future__ import annotations

from collections import Counter


class SocketLimiter:
    def __init__(self, per_ip: int) -> None:
        self.per_ip = per_ip
        self._open: Counter[str] = Counter()

    def acquire(self, ip: str) -> bool:
        if self.per_ip > 0 and self._open[ip] >= self.per_ip:
            return False
        self._open[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self._open[ip] -= 1
        if self._open[ip] <= 0:
            del self._open[ip]
