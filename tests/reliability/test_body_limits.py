"""Attack 3 of issue 18: bodies were read whole before the size cap (Twilio/Telnyx webhooks, standalone
ingest when chunked); four concurrent 200 MB posts raised RSS to ~1.27 GB.

Each test streams a chunked body (no ``Content-Length``) far past the cap and counts how many bytes the
server let in before it answered 413 and closed: bounded by the cap plus socket buffers, not the body.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from getpatter import Patter
from getpatter._body_limit import BodyLimitMiddleware
from getpatter.carriers.twilio.config import Twilio
from getpatter.dashboard.standalone import create_dashboard_app
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.server import Running, running
from tests.integration.harness import NUMBER, PUBLIC_HOST

#: What the attacker tries to push per request (the issue used 200 MB; 48 MB shows the same).
ATTEMPT_BYTES = 48 * 1024 * 1024
#: Bytes the kernel may absorb (client send + server receive buffers) after the server stops reading.
SOCKET_SLACK = 8 * 1024 * 1024


async def _chunked_post(server: Running, path: str, content_type: str) -> tuple[bytes, int]:
    """POST a chunked body of up to ATTEMPT_BYTES; ``(response head, bytes written before refusal)``."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {server.hostport}\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    writer.write(head.encode())
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    response = asyncio.ensure_future(reader.read(200))
    with contextlib.suppress(ConnectionError, OSError):
        while sent < ATTEMPT_BYTES and not response.done():
            writer.write(frame)
            await asyncio.wait_for(writer.drain(), 20)
            sent += len(chunk)
    answer = await asyncio.wait_for(response, 20)
    writer.close()
    return answer, sent


def _twilio_app() -> Any:
    phone = Patter(
        carrier=Twilio("AC" + "1" * 32, "token-x", base_url="http://127.0.0.1:9"),
        phone_number=NUMBER,
        webhook_url=PUBLIC_HOST,
    )
    agent = phone.agent(
        "You are terse.",
        stt=DeepgramSTT(api_key="dg-unused", base_url="ws://127.0.0.1:9"),
        tts=ElevenLabsTTS(api_key="el-unused", base_url="http://127.0.0.1:9"),
    )
    return phone.asgi_app(agent, on_message=lambda event: "ok", dashboard=False)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/webhooks/twilio/voice", "application/x-www-form-urlencoded"),
        ("/webhooks/twilio/status", "application/x-www-form-urlencoded"),
    ],
)
async def test_chunked_webhook_bodies_are_refused_while_streaming(path: str, content_type: str) -> None:
    async with running(_twilio_app()) as server:
        answer, sent = await _chunked_post(server, path, content_type)
        print(f"\nchunked {path}: 413 after {sent / 1e6:.1f} MB written (of {ATTEMPT_BYTES / 1e6:.0f})")
        assert answer.startswith(b"HTTP/1.1 413"), answer[:60]
        assert sent < 64 * 1024 + SOCKET_SLACK, f"server read {sent} bytes of a 64 KiB-capped webhook"
        async with httpx.AsyncClient(timeout=20) as client:
            assert (await client.get(server.http_url + "/health")).status_code == 200


async def test_four_concurrent_chunked_ingests_are_refused_early() -> None:
    async with running(create_dashboard_app()) as server:
        results = await asyncio.gather(
            *(_chunked_post(server, "/api/dashboard/ingest", "application/json") for _ in range(4))
        )
    print(f"\n4 chunked ingests: 413 after {[round(sent / 1e6, 1) for _, sent in results]} MB written")
    for answer, sent in results:
        assert answer.startswith(b"HTTP/1.1 413"), answer[:60]
        assert sent < 2 * 1024 * 1024 + SOCKET_SLACK


async def test_declared_oversize_is_refused_before_reading_and_small_bodies_pass() -> None:
    seen: list[bytes] = []

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = BodyLimitMiddleware(echo, caps={"/small/": 10}, default=1000)
    async with running(app) as server, httpx.AsyncClient(timeout=20) as client:
        assert (await client.post(server.http_url + "/small/x", content=b"y" * 11)).status_code == 413
        assert (await client.post(server.http_url + "/small/x", content=b"y" * 10)).status_code == 200
        assert (await client.post(server.http_url + "/other", content=b"y" * 1000)).status_code == 200
        assert (await client.post(server.http_url + "/other", content=b"y" * 1001)).status_code == 413
    assert seen == [b"y" * 10, b"y" * 1000], "refused bodies never reach the app"
    assert app.refused == 2
