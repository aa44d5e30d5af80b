"""One provider object serves every call: its HTTP pool must neither cap nor forget busy-hour connections."""

from __future__ import annotations

import asyncio
import time

from getpatter._pool import VENDOR_KEEPALIVE_EXPIRY_S
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import running

CONCURRENT = 120  # past httpx's default cap of 100 connections and 20 kept alive


async def test_a_busy_server_streams_speech_for_every_call_at_once_and_reuses_the_connections() -> None:
    fake = FakeElevenLabs(api_key="el-test", ms_per_char=1.0, hold_until_in_flight=CONCURRENT)
    # Connections that finished early wait idle for the wave's stragglers, which on a loaded machine can take
    # longer than uvicorn's 5 s keep-alive: this test is about pool size, so the fake keeps them longer.
    async with running(fake.app, keep_alive_s=120) as srv:
        tts = ElevenLabsTTS(api_key="el-test", base_url=srv.http_url, timeout=120)

        finished: list[float] = []

        async def speak(i: int) -> int:
            size = len(b"".join([chunk async for chunk in tts.synthesize(f"Caller number {i}, hello.")]))
            finished.append(time.monotonic())
            return size

        async def wave() -> list[int]:
            # The fake answers nobody until all of them are open at once: a capped pool never gets there.
            return await asyncio.wait_for(asyncio.gather(*(speak(i) for i in range(CONCURRENT))), 90)

        first = await wave()
        fake._all_in.clear()
        # The longest a first-wave connection sat idle before the second wave could reuse it.
        longest_idle = time.monotonic() - min(finished)
        second = await wave()
        await tts.close()
    assert fake.max_in_flight == CONCURRENT
    assert fake.completed == 2 * CONCURRENT and all(n > 0 for n in first + second)
    # The second busy moment rode on the first one's connections: no new TCP (or, for real, TLS) setups —
    # unless a machine so loaded that the first wave's stragglers took longer than the pool's idle expiry
    # (then the early connections were rightly retired).
    ports = fake.client_ports
    assert len(set(ports[:CONCURRENT])) == CONCURRENT
    assert set(ports[CONCURRENT:]) <= set(ports[:CONCURRENT]) or longest_idle >= VENDOR_KEEPALIVE_EXPIRY_S


def _tls_contexts(client: object) -> list[object]:
    """The TLS context of each connection pool behind a ``pooled_client`` (kept-alive sub-pools and fresh)."""
    retry = client._transport  # type: ignore[attr-defined]
    return [shard._pool._ssl_context for shard in retry._shards] + [retry._fresh._pool._ssl_context]


async def test_every_pool_in_the_process_verifies_with_one_tls_context_built_once() -> None:
    import ssl

    from getpatter._pool import pooled_client, shared_ssl_context

    clients = [pooled_client(), pooled_client(timeout=5.0), pooled_client(trust_env=False)]
    try:
        contexts = [_tls_contexts(c) for c in clients]
        # Every pool of the default clients holds the one context: the CA bundle is loaded once.
        assert {id(ctx) for ctx in contexts[0] + contexts[1]} == {id(shared_ssl_context(trust_env=True))}
        # A client told not to trust the environment gets the context built the same way without it.
        assert {id(ctx) for ctx in contexts[2]} == {id(shared_ssl_context(trust_env=False))}
        for ctx in contexts[0] + contexts[2]:
            assert isinstance(ctx, ssl.SSLContext)
            assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    finally:
        for c in clients:
            await c.aclose()
