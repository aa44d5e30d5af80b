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
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx

log = logging.getLogger("getpatter.http")

#: Idle connections kept per client; beyond this a finished request's connection is closed.
KEEPALIVE_CONNECTIONS: Final = 256
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


def shared_pool_limits(keepalive_expiry_s: float) -> httpx.Limits:
    return httpx.Limits(
        max_connections=None,
        max_keepalive_connections=KEEPALIVE_CONNECTIONS,
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


class StaleConnectionRetry(httpx.AsyncBaseTransport):
    """Pooled transport that retries, once and on a fresh connection, a request lost to a stale connection.

    Both pools are ``httpx.AsyncHTTPTransport(limits=..., **transport_options)``, or what ``make_transport``
    builds for their limits (then ``transport_options`` must be empty). ``stale_retries`` counts the
    retries made (each is also logged at DEBUG on ``getpatter.http``).
    """

    def __init__(
        self,
        *,
        keepalive_expiry_s: float,
        make_transport: TransportFactory | None = None,
        **transport_options: Any,
    ) -> None:
        if make_transport is not None and transport_options:
            raise TypeError("pass transport options to make_transport, not with it")
        if make_transport is None and "verify" not in transport_options:
            trust_env = transport_options.get("trust_env", True)
            transport_options["verify"] = shared_ssl_context(trust_env=trust_env)
        build: TransportFactory = make_transport or (
            lambda limits: httpx.AsyncHTTPTransport(limits=limits, **transport_options)
        )
        self._pooled = build(shared_pool_limits(keepalive_expiry_s))
        # Retries go through a pool that keeps nothing, so they always ride a connection of their own.
        self._fresh = build(httpx.Limits(max_connections=None, max_keepalive_connections=0))
        self.stale_retries = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()  # an in-memory body can be sent again; every client here sends one
        user_trace = request.extensions.get("trace")
        attempt = _AttemptTrace(user_trace)
        request.extensions = {**request.extensions, "trace": attempt}
        try:
            return await self._pooled.handle_async_request(request)
        except _STALE_ERRORS as exc:
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
        finally:
            request.extensions = {
                **{k: v for k, v in request.extensions.items() if k != "trace"},
                **({"trace": user_trace} if user_trace is not None else {}),
            }
        return await self._fresh.handle_async_request(request)

    async def aclose(self) -> None:
        try:
            await self._pooled.aclose()
        finally:
            await self._fresh.aclose()


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
    (both the kept-alive one and the retry's fresh one) instead of plain httpx transports: webhook tools
    pass one that connects only to the addresses their SSRF check resolved (``tools/_safe_transport.py``).
    """
    transport = (
        StaleConnectionRetry(keepalive_expiry_s=keepalive_expiry_s, make_transport=make_transport)
        if make_transport is not None
        else StaleConnectionRetry(keepalive_expiry_s=keepalive_expiry_s, trust_env=trust_env)
    )
    return httpx.AsyncClient(transport=transport, trust_env=trust_env, **client_options)
