"""Connection-pool limits for the HTTP clients one server shares across all of its calls.

A provider object (an LLM, a TTS voice) is built once and serves every call, and each call may hold a
streamed request open at the same moment (an answer being generated, an utterance being spoken). httpx's
defaults (100 connections, 20 kept alive) would make call 101 wait for a free slot, and a busy server
would repeat TLS handshakes every turn; so: no cap on open connections, and plenty kept warm.
"""

from __future__ import annotations

import httpx

#: Idle connections kept per client; beyond this a finished request's connection is closed.
KEEPALIVE_CONNECTIONS = 256


def shared_pool_limits(keepalive_expiry_s: float) -> httpx.Limits:
    return httpx.Limits(
        max_connections=None,
        max_keepalive_connections=KEEPALIVE_CONNECTIONS,
        keepalive_expiry=keepalive_expiry_s,
    )
