"""One instance's connection to the Redis that a fleet of getpatter instances shares.

Contract:

* :meth:`RedisLink.start` connects and pings; a Redis that cannot be reached at start is a configuration
  problem and raises :class:`~getpatter.errors.PatterConnectionError` naming the URL (password removed).
* Afterwards Redis is a helper, never a dependency of a live call: every operation goes through
  :meth:`call` (reads: a fallback value when Redis is away) or :meth:`write` (writes: kept in a bounded
  buffer while Redis is away, replayed in order when it is back). The first failure logs one warning and
  the instance goes on local-only; a background task reconnects with exponential backoff and logs once
  when Redis is back.
* Every key lives under ``{prefix}:`` (``PATTER_REDIS_PREFIX``, default ``patter``) so several fleets,
  or other applications, can share one Redis.

The ``redis`` package (extra ``redis``) is imported only when a link is built.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

from getpatter.errors import PatterConfigError, PatterConnectionError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("getpatter.fleet")

T = TypeVar("T")
F = TypeVar("F")
Op = Callable[["Redis"], Awaitable[Any]]

DEFAULT_PREFIX: Final = "patter"
#: Writes kept while Redis is away; past this the oldest are dropped (and counted).
DEFAULT_BUFFER_LIMIT: Final = 10_000
_SCHEMES: Final = ("redis", "rediss", "unix")


def redact_url(url: str) -> str:
    """``url`` without its password (``redis://user:***@host:6379/0``): safe for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def validate_redis_url(url: object, *, name: str = "redis_url") -> str:
    if not isinstance(url, str) or not url.strip():
        raise PatterConfigError(f"{name} must be a URL like 'redis://localhost:6379/0', got {url!r}")
    url = url.strip()
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise PatterConfigError(
            f"{name}={redact_url(url)!r}: scheme {scheme!r} is not one of redis://, rediss:// (TLS) or "
            "unix://. Fix: e.g. 'redis://:password@redis.internal:6379/0'"
        )
    return url


def validate_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
        raise PatterConfigError(
            f"PATTER_REDIS_PREFIX must be a non-empty word without spaces, got {prefix!r}"
        )
    return prefix


class RedisLink:
    """The shared Redis of a fleet, as one instance sees it (see the module docstring for the contract)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        instance_id: str | None = None,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
        connect_timeout_s: float = 3.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._url = validate_redis_url(url)
        self.prefix = validate_prefix(prefix)
        self.instance_id = instance_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._connect_timeout_s = connect_timeout_s
        self._max_backoff_s = max_backoff_s
        self._client: Redis | None = None
        self._healthy = False
        self._reconnecting: asyncio.Task[None] | None = None
        self._pending: collections.deque[Op] = collections.deque()
        self._buffer_limit = buffer_limit
        self._closed = False
        self._back = asyncio.Event()
        self._blocking: Redis | None = None
        #: Run once Redis is back and the buffered writes are replayed: re-assert what a restarted
        #: Redis may have lost (the owners of pending calls, live calls).
        self.on_back: list[Callable[[], Awaitable[None]]] = []
        #: Writes dropped because the buffer was full while Redis was away.
        self.dropped_writes = 0
        #: How many times Redis was lost and found again.
        self.reconnects = 0

    def __repr__(self) -> str:
        return f"RedisLink({redact_url(self._url)!r}, prefix={self.prefix!r}, healthy={self._healthy})"

    @property
    def url(self) -> str:
        """The URL without its password."""
        return redact_url(self._url)

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def buffered_writes(self) -> int:
        return len(self._pending)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def client(self) -> Redis:
        """The raw asyncio client (for blocking reads that manage their own failures)."""
        if self._client is None:
            raise PatterConfigError("RedisLink.start() must be awaited before use")
        return self._client

    async def start(self) -> None:
        try:
            from redis.asyncio import Redis
        except ImportError:
            raise PatterConfigError(
                "redis_url needs the 'redis' extra: pip install 'getpatter[redis]'"
            ) from None
        self._client = Redis.from_url(
            self._url,
            decode_responses=True,
            socket_connect_timeout=self._connect_timeout_s,
            socket_timeout=self._connect_timeout_s,
            retry_on_timeout=False,
        )
        try:
            await self._client.ping()
        except Exception as exc:
            await self._client.aclose()
            self._client = None
            raise PatterConnectionError(
                f"cannot reach Redis at {self.url}: {_describe(exc)}. Fix: start Redis there, or correct "
                "redis_url= / PATTER_REDIS_URL (unset it to run this instance on its own)."
            ) from None
        self._healthy = True
        self._back.set()
        log.info("sharing state through Redis at %s (prefix %r)", self.url, self.prefix)

    async def call(self, op: Callable[[Redis], Awaitable[T]], *, fallback: F) -> T | F:
        """Run a read; ``fallback`` while Redis is away (and when this call finds it gone)."""
        if not self._healthy or self._client is None:
            return fallback
        try:
            return await op(self._client)
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self.lost(exc)
            return fallback

    async def write(self, op: Op) -> bool:
        """Run a write now, or keep it for when Redis is back. True when it reached Redis now."""
        if self._healthy and self._client is not None:
            try:
                await op(self._client)
                return True
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                self.lost(exc)
        self._buffer(op)
        return False

    def _buffer(self, op: Op) -> None:
        if len(self._pending) >= self._buffer_limit:
            self._pending.popleft()
            self.dropped_writes += 1
        self._pending.append(op)

    def lost(self, exc: BaseException) -> None:
        """Redis failed under an operation (also one that manages its own failures, like a blocking
        read): go local-only, warn once, reconnect in the background."""
        if self._closed:
            return
        if self._healthy:
            self._healthy = False
            self._back.clear()
            log.warning(
                "lost Redis at %s (%s): this instance goes on alone (calls are not affected) and "
                "reconnects in the background",
                self.url,
                _describe(exc),
            )
        if self._reconnecting is None or self._reconnecting.done():
            self._reconnecting = asyncio.get_running_loop().create_task(
                self._reconnect(), name="getpatter-redis-reconnect"
            )

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closed:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff_s)
            client = self._client
            if client is None:
                return
            try:
                await client.ping()
                await self._replay(client)
            except Exception as exc:
                if not is_connection_error(exc):
                    log.exception("replaying buffered writes to Redis failed")
                continue
            self._healthy = True
            self._back.set()
            self.reconnects += 1
            log.warning("Redis at %s is back: shared state resumes", self.url)
            for hook in list(self.on_back):
                try:
                    await hook()
                except Exception:
                    log.exception("re-sharing state after Redis came back failed")
            return

    async def wait_healthy(self) -> None:
        """Return once Redis is reachable (at once while it is)."""
        await self._back.wait()

    @property
    def blocking_client(self) -> Redis:
        """A second client for blocking reads (``BLPOP``, ``XREAD BLOCK``, pub/sub), without the read
        timeout of :attr:`client`; its failures are reported with :meth:`lost`."""
        if self._blocking is None:
            from redis.asyncio import Redis

            self._blocking = Redis.from_url(
                self._url,
                decode_responses=True,
                socket_connect_timeout=self._connect_timeout_s,
                socket_keepalive=True,
            )
        return self._blocking

    async def _replay(self, client: Redis) -> None:
        while self._pending:
            await self._pending[0](client)
            self._pending.popleft()

    async def close(self) -> None:
        self._closed = True
        task, self._reconnecting = self._reconnecting, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._healthy = False
        self._back.set()  # wake waiters: they see the link closed
        for client in (self._client, self._blocking):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._client = self._blocking = None

    @property
    def closed(self) -> bool:
        return self._closed


def is_connection_error(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.split("\n", 1)[0][:200]
