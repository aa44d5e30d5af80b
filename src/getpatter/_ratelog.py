"""A log line that cannot flood the log: the first occurrence at once, then one line per interval with
the count of what was suppressed. One instance per source (socket, stream) so each keeps its own voice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        interval_s: float = 10.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval_s
        self._level = level
        self._clock = clock
        self._logged_at: float | None = None
        self._pending = 0
        #: Every occurrence, logged or not.
        self.count = 0

    def __call__(self, detail: str) -> None:
        """Record one occurrence; logs it if the interval since the last line has passed."""
        self.count += 1
        self._pending += 1
        now = self._clock()
        if self._logged_at is None or now - self._logged_at >= self._interval:
            self._emit(detail)
            self._logged_at = now

    def flush(self) -> None:
        """Log the occurrences not yet reported (e.g. when the socket closes)."""
        if self._pending:
            self._emit("")

    def _emit(self, detail: str) -> None:
        suffix = f" (last: {detail[:200]})" if detail else ""
        if self._pending == 1 and detail:
            self._logger.log(self._level, "%s: %s", self._what, detail[:200])
        else:
            self._logger.log(self._level, "%s: %d occurrence(s)%s", self._what, self._pending, suffix)
        self._pending = 0
