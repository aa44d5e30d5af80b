"""The HTTP clients of the SDK: shared connection pools that survive a server closing idle connections.

Every HTTP client in the product (LLMs, HTTP TTS, batch STT, carrier REST, webhook tools, ``on_message``
URLs) is built by :func:`pooled_client`, for two reasons:

**Sizing.** A provider object (an LLM, a TTS voice) is built once and serves every call, and each call may
hold a streamed request open at the same moment (an answer being generated, an utterance being spoken).
httpx's defaults (100 connections, 20 kept alive) would make call 101 wait for a free slot, and a busy
server would repeat TLS handshakes every turn; so: no cap on open connections, and plenty kept warm.

**Stale keep-alive connections.** Servers close idle keep-alive connections on their own schedule, and a
request written onto a connection the server has just closed fails before any response byte arrives
(reset, EOF, "server disconnected"). httpcore notices most closed connections before reusing them, but
not one closed while the request is on its way. Such a failure says nothing about the request, so
:class:`StaleConnectionRetry` sends it once more on a brand-new connection. It never retries

* a failure on a connection opened for this request (that is a real error: refused, unreachable, reset),
* anything after the response status line arrived (the server has started answering: a retry could
  synthesize the same sentence twice, or bill a second completion), nor
* timeouts (a slow server is not a stale connection).

Idle expiry sits below the idle timeouts of the servers on the other end, so stale reuse is rare and the
retry is only the safety net:

* :data:`VENDOR_KEEPALIVE_EXPIRY_S` (50 s) for vendor APIs (OpenAI, Anthropic, Google, ElevenLabs,
  Twilio, Telnyx, ...): these sit behind cloud load balancers and CDNs whose idle timeouts are 60 s
  (AWS ALB/ELB defaults) or longer (Google front ends, Cloudflare). Keeping connections that long saves a
  TCP + TLS setup (two round trips) on most turns of a quiet server.
* :data:`ENDPOINT_KEEPALIVE_EXPIRY_S` (4 s) for the user's own endpoints (webhook tools, ``on_message``
  URLs): the common application servers close idle connections after 5 s (uvicorn, Node.js, Apache),
  gunicorn after 2 s.

**Small sub-pools.** httpcore's connection pool re-examines every connection it holds whenever a request
starts or a response closes (closed? expired, with a socket poll for an idle one? idle? available?, and
for each idle connection a count of them all), so its bookkeeping per request grows with the pool: with
the ~150 connections one provider holds for 50 calls, ~0.8 ms per request, ~6% of a server's CPU. So the
kept-alive side is a row of sub-pools of at most :data:`SHARD_CAPACITY` requests in flight each, opened as
load needs them, and a request goes to the first one with room: a quiet server stays on the first one's
warm connections, a busy one reuses, sub-pool by sub-pool, the connections its last busy moment opened,
and a request's bookkeeping scans at most a few connections however many the client holds. (The price: a
request may open a connection while another sub-pool holds an idle one, e.g. after a server closed some.)
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import httpx

from getpatter.errors import PatterConfigError

log = logging.getLogger("getpatter.http")

#: Idle connections kept per client; beyond this a finished request's connection is closed.
KEEPALIVE_CONNECTIONS: Final = 256
#: Requests in flight on one kept-alive sub-pool before the next one is used, so (below 256 in flight)
#: the most connections httpcore's per-request scan sees. benchmarks/bench_pool.py: ~125 ``is_idle``
#: checks and ~0.5-1 ms per request with 8, at 50, 150 or 300 streams alike; one pool of 150 connections:
#: ~46 000 and ~80 ms; 16 costs about twice 8.
SHARD_CAPACITY: Final = 8
#: Sub-pools at most: together they keep :data:`KEEPALIVE_CONNECTIONS` warm, as a single pool did. Past
#: ``MAX_SHARDS * SHARD_CAPACITY`` requests in flight, each goes to the least busy sub-pool (no cap).
MAX_SHARDS: Final = KEEPALIVE_CONNECTIONS // SHARD_CAPACITY
#: Idle expiry for vendor APIs (below the 60 s idle timeout of the load balancers in front of them).
VENDOR_KEEPALIVE_EXPIRY_S: Final = 50.0
#: Idle expiry for the user's own endpoints (below the 5 s of uvicorn, Node.js and Apache).
ENDPOINT_KEEPALIVE_EXPIRY_S: Final = 4.0

#: Transport failures that, on a reused connection before any response byte, mean "the server had
#: already closed it": a reset or EOF while writing the request or reading the status line.
_STALE_ERRORS: Final = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
#: httpcore's words for EOF before any response byte (a malformed status line is another
#: RemoteProtocolError, and not a stale connection).
_NO_RESPONSE: Final = "without sending a response"

TraceHook = Callable[[str, dict[str, Any]], Awaitable[None] | None]
#: Builds one pool's transport for the given limits (e.g. a pool that connects only to checked addresses).
TransportFactory = Callable[[httpx.Limits], httpx.AsyncBaseTransport]


def shared_pool_limits(keepalive_expiry_s: float, *, keepalive: int = SHARD_CAPACITY) -> httpx.Limits:
    """One kept-alive sub-pool's limits: no cap on connections, ``keepalive`` of them kept warm."""
    return httpx.Limits(
        max_connections=None,
        max_keepalive_connections=keepalive,
        keepalive_expiry=keepalive_expiry_s,
    )


class _AttemptTrace:
    """httpcore ``trace`` hook for one attempt: notes whether it opened a connection of its own."""

    __slots__ = ("inner", "opened_connection")

    def __init__(self, inner: TraceHook | None) -> None:
        self.inner = inner
        self.opened_connection = False

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        # "connection.connect_tcp.started", "connection.connect_unix_socket.started"
        if name.startswith("connection.connect_"):
            self.opened_connection = True
        if self.inner is not None:
            result = self.inner(name, info)
            if result is not None:
                await result


class _InFlight(httpx.AsyncByteStream):
    """One request's place on its sub-pool: given back once, when its response closes or it fails."""

    __slots__ = ("_counts", "_shard", "_stream")

    def __init__(self, counts: list[int], shard: int) -> None:
        self._counts = counts
        self._shard: int | None = shard
        self._stream: httpx.AsyncByteStream | None = None
        counts[shard] += 1

    def release(self) -> None:
        if self._shard is not None:
            self._counts[self._shard] -= 1
            self._shard = None

    def carry(self, response: httpx.Response) -> httpx.Response:
        """Hold the place until ``response`` is closed (a streamed answer keeps its connection until then)."""
        assert isinstance(response.stream, httpx.AsyncByteStream)
        self._stream = response.stream
        response.stream = self
        return response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert self._stream is not None
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        try:
            if self._stream is not None:
                await self._stream.aclose()
        finally:
            self.release()


class StaleConnectionRetry(httpx.AsyncBaseTransport):
    """Pooled transport that retries, once and on a fresh connection, a request lost to a stale connection.

    The kept-alive side is up to ``max_shards`` sub-pools; a request goes to the first with fewer than
    ``shard_capacity`` requests in flight (a new one is opened when all are that busy; past ``max_shards``,
    the least busy one). Every pool is ``httpx.AsyncHTTPTransport(limits=..., **transport_options)``, or
    what ``make_transport`` builds for its limits (then ``transport_options`` must be empty).
    ``stale_retries`` counts the retries made (each is also logged at DEBUG on ``getpatter.http``).
    """

    def __init__(
        self,
        *,
        keepalive_expiry_s: float,
        make_transport: TransportFactory | None = None,
        shard_capacity: int = SHARD_CAPACITY,
        max_shards: int = MAX_SHARDS,
        **transport_options: Any,
    ) -> None:
        if make_transport is not None and transport_options:
            raise TypeError("pass transport options to make_transport, not with it")
        for name, value in (("shard_capacity", shard_capacity), ("max_shards", max_shards)):
            if value < 1:
                raise PatterConfigError(f"{name}={value}: pass a whole number of at least 1")
        if make_transport is None and "verify" not in transport_options:
            trust_env = transport_options.get("trust_env", True)
            transport_options["verify"] = shared_ssl_context(trust_env=trust_env)
        self._build: TransportFactory = make_transport or (
            lambda limits: httpx.AsyncHTTPTransport(limits=limits, **transport_options)
        )
        self._limits = shared_pool_limits(keepalive_expiry_s, keepalive=shard_capacity)
        self._capacity = shard_capacity
        self._max_shards = max_shards
        self._shards = [self._build(self._limits)]
        self._in_flight = [0]
        # Retries go through a pool that keeps nothing, so they always ride a connection of their own.
        self._fresh = self._build(httpx.Limits(max_connections=None, max_keepalive_connections=0))
        self.stale_retries = 0

    def _pick_shard(self) -> int:
        """The first sub-pool with room (its warm connections), else a new one, else the least busy."""
        for index, count in enumerate(self._in_flight):
            if count < self._capacity:
                return index
        if len(self._shards) < self._max_shards:
            self._shards.append(self._build(self._limits))
            self._in_flight.append(0)
            return len(self._shards) - 1
        return min(range(len(self._in_flight)), key=self._in_flight.__getitem__)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # an in-memory body can be sent again; every client here sends one
        user_trace = request.extensions.get("trace")
        attempt = _AttemptTrace(user_trace)
        request.extensions = {**request.extensions, "trace": attempt}
        shard = self._pick_shard()
        place = _InFlight(self._in_flight, shard)
        try:
            return place.carry(await self._shards[shard].handle_async_request(request))
        except _STALE_ERRORS as exc:
            place.release()
            if attempt.opened_connection or (
                isinstance(exc, httpx.RemoteProtocolError) and _NO_RESPONSE not in str(exc)
            ):
                raise
            self.stale_retries += 1
            log.debug(
                "%s %s://%s%s: reused connection was closed by the server (%s); retrying on a new one",
                request.method,
                request.url.scheme,
                request.url.netloc.decode("ascii", "replace"),
                request.url.path,
                type(exc).__name__,
            )
        except BaseException:
            place.release()
            raise
        finally:
            request.extensions = {
                **{k: v for k, v in request.extensions.items() if k != "trace"},
                **({"trace": user_trace} if user_trace is not None else {}),
            }
        return await self._fresh.handle_async_request(request)

    async def aclose(self) -> None:
        """Close every sub-pool and the retry pool (all of them, even if one fails to close)."""
        failure: BaseException | None = None
        for transport in [*self._shards, self._fresh]:
            try:
                await transport.aclose()
            except Exception as exc:  # close the others, then report the first failure
                failure = failure or exc
        if failure is not None:
            raise failure


@functools.cache
def shared_ssl_context(*, trust_env: bool = True) -> ssl.SSLContext:
    """The process's one verifying TLS context (httpx's defaults: certifi, or ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR`` when ``trust_env``). Building one loads the whole CA bundle (~50 ms of CPU on a slow
    core); every pool used to build two, inside the first call that needed them. An ``SSLContext`` is
    made to be shared by connections; nothing here changes it after it is built."""
    return httpx.create_ssl_context(trust_env=trust_env)


def pooled_client(
    *,
    keepalive_expiry_s: float = VENDOR_KEEPALIVE_EXPIRY_S,
    trust_env: bool = True,
    make_transport: TransportFactory | None = None,
    **client_options: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on a :class:`StaleConnectionRetry` pool (``client_options`` as httpx's).

    ``trust_env=False`` for clients whose destination was checked (webhook tools, loopback posts): an
    ambient ``HTTP(S)_PROXY`` would otherwise route them elsewhere. ``make_transport`` builds the pools
    (the kept-alive sub-pools and the retry's fresh one) instead of plain httpx transports: webhook tools
    pass one that connects only to the addresses their SSRF check resolved (``tools/_safe_transport.py``).
    """
    transport = (
        StaleConnectionRetry(keepalive_expiry_s=keepalive_expiry_s, make_transport=make_transport)
        if make_transport is not None
        else StaleConnectionRetry(keepalive_expiry_s=keepalive_expiry_s, trust_env=trust_env)
    )
    return httpx.AsyncClient(transport=transport, trust_env=trust_env, **client_options)
