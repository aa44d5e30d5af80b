"""Per-client-IP cap on concurrent media sockets (API.md B.1).

Keyed on the TCP peer address only: ``X-Forwarded-For`` is attacker-controlled and never consulted.
Behind a local proxy or tunnel every socket comes from 127.0.0.1, so raise or disable the cap there
(``PATTER_MAX_SOCKETS_PER_IP``; 0 = no cap).
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
