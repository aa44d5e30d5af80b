"""Admission of a media socket: read up to ``start``, check its stream token, hand over a clean start.

Runs between the WebSocket accept and the call session: nothing here opens a vendor connection, so a
socket refused here costs the server one small task. Refusals close with 1008 (policy violation) and are
logged once per source address (a flood from one address is one line, then counted).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Container, Mapping
from dataclasses import dataclass, field, replace

from getpatter.carriers.base import MediaCodec, MediaProtocolError, MediaStarted, MediaStopped
from getpatter.server.client_address import TrustedProxies
from getpatter.server.stream_tokens import TOKEN_PARAM, Direction, StreamTokenError, StreamTokens

__all__ = ["RefusalLog", "StreamExpectation", "StreamGate", "admit"]

log = logging.getLogger("getpatter.server")

#: Frames read while waiting for ``start`` (carriers send ``connected`` then ``start``).
MAX_FRAMES_BEFORE_START = 16
#: How long an unauthenticated socket may wait before ``start`` (carriers send it within ~1 s).
START_TIMEOUT_S = 10.0
#: Call ids remembered as expecting a socket (bounded; only signed carrier webhooks add to it).
MAX_EXPECTED = 65536


class RefusalLog:
    """Log the first refusal from each source at WARNING; later ones at DEBUG, counted per source."""

    def __init__(self, max_sources: int = 4096) -> None:
        self._counts: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._max = max_sources
        self.total = 0

    def note(self, source: str, message: str, *args: object) -> None:
        self.total += 1
        count = self._counts.pop(source, 0) + 1
        self._counts[source] = count
        if len(self._counts) > self._max:
            self._counts.popitem(last=False)
        if count == 1:
            log.warning(
                "media socket from %s refused: " + message + " (further refusals from %s are not logged)",
                source,
                *args,
                source,
            )
        else:
            log.debug("media socket from %s refused (%d so far): " + message, source, count, *args)

    def count(self, source: str) -> int:
        return self._counts.get(source, 0)


@dataclass(slots=True)
class StreamGate:
    """The server's media-socket admission: token keys and ledger, trusted proxies, refusal log."""

    tokens: StreamTokens
    proxies: TrustedProxies = field(default_factory=TrustedProxies)
    refusals: RefusalLog = field(default_factory=RefusalLog)
    start_timeout_s: float = START_TIMEOUT_S
    #: Call ids a token was handed out for (from signed carrier webhooks) -> expiry: their sockets are
    #: not held to the per-IP cap while they start (a carrier edge opens many at once from one address).
    _expected: collections.OrderedDict[str, float] = field(default_factory=collections.OrderedDict)

    def mint(self, call_id: str, direction: Direction, *, ttl_s: float | None = None) -> str:
        """A token for the stream URL of ``call_id``; the call's socket is then expected."""
        token = self.tokens.mint(call_id, direction, ttl_s=ttl_s)
        self._expected.pop(call_id, None)
        self._expected[call_id] = time.monotonic() + (self.tokens.ttl_s if ttl_s is None else ttl_s)
        while len(self._expected) > MAX_EXPECTED or (
            self._expected and next(iter(self._expected.values())) < time.monotonic()
        ):
            self._expected.popitem(last=False)
        return token

    def expected(self, call_id: str) -> bool:
        """True while a token handed out for ``call_id`` is unspent and unexpired."""
        deadline = self._expected.get(call_id)
        return deadline is not None and deadline > time.monotonic()

    def arrived(self, call_id: str) -> None:
        self._expected.pop(call_id, None)

    @classmethod
    def from_env(cls, carrier_secret: str, environ: Mapping[str, str] | None = None) -> StreamGate:
        """``PATTER_STREAM_SECRET`` (else ``carrier_secret``) and ``PATTER_TRUSTED_PROXIES``."""
        return cls(
            tokens=StreamTokens.from_env(carrier_secret, environ),
            proxies=TrustedProxies.from_env(environ),
        )


@dataclass(frozen=True, slots=True)
class StreamExpectation:
    """What the route knows before ``start``.

    ``path_call_id``: the call id in the URL (``""`` when the path names none, e.g. one shared path for
    every outbound stream); ``start`` must then claim the same id. ``subject``: the id the token was
    minted for when it is not the call id (a token minted at dial time, before the call had an id).
    ``url_token``: the token when the URL carried it; ``None`` means it comes in ``start``'s custom
    parameters.
    """

    path_call_id: str
    direction: Direction
    subject: str = ""
    url_token: str | None = None


async def _read_start(
    codec: MediaCodec, receive: Callable[[], Awaitable[str | bytes | None]]
) -> MediaStarted | None:
    for _ in range(MAX_FRAMES_BEFORE_START):
        message = await receive()
        if message is None:
            return None
        try:
            event = codec.parse(message)
        except MediaProtocolError:
            continue
        if isinstance(event, MediaStarted):
            return event
        if isinstance(event, MediaStopped):  # a stream that never started: nothing to admit
            return None
    return None


async def admit(
    gate: StreamGate,
    codec: MediaCodec,
    receive: Callable[[], Awaitable[str | bytes | None]],
    expect: StreamExpectation,
    *,
    live: Container[str],
    dialled_nonce: Callable[[str], str],
) -> MediaStarted:
    """Read until ``start`` and verify its token; the returned start has the token removed and names the
    verified call id. Raises :class:`StreamTokenError` (``missing`` also for no ``start`` in time).

    ``live``: the ids of the calls running now (a live call cannot be taken over). ``dialled_nonce``: the
    nonce of the token this instance handed out when it dialled a call (``""``: unknown), which a token
    naming a ``subject`` instead of the call must match."""
    try:
        started = await asyncio.wait_for(_read_start(codec, receive), gate.start_timeout_s)
    except TimeoutError:
        started = None
    if started is None:
        raise StreamTokenError("missing")
    params = dict(started.custom_params)
    carried = params.pop(TOKEN_PARAM, None)
    token = expect.url_token if expect.url_token is not None else carried
    if expect.path_call_id and started.call_id and started.call_id != expect.path_call_id:
        raise StreamTokenError("other_call")
    call_id = started.call_id or expect.path_call_id
    if not call_id:
        raise StreamTokenError("malformed")
    claim = gate.tokens.verify(token, expect.subject or call_id, expect.direction)
    if expect.subject:
        # The token names no call: the call record (if this instance placed the call) says which it was for.
        nonce = dialled_nonce(call_id)
        if nonce and nonce != claim.nonce:
            raise StreamTokenError("other_call")
    if call_id in live:
        raise StreamTokenError("live")
    gate.tokens.spend(claim)
    gate.arrived(call_id)
    return replace(started, call_id=call_id, custom_params=params)
