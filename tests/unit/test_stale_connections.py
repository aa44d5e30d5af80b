"""Every HTTP client in the product survives a server that closed a kept-alive connection under it.

A request written onto a reused connection the server has just closed is sent once more, on a new
connection; nothing else is retried: not a new connection's failure, not an answer that had started.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import numpy as np
import pytest

from getpatter.carriers.telnyx.rest import TelnyxRestClient
from getpatter.carriers.twilio.rest import TwilioRestClient
from getpatter.errors import PatterError
from getpatter.llm.base import TextDelta
from getpatter.llm.openai import OpenAILLM
from getpatter.stt.base import Transcript
from getpatter.stt.whisper import WhisperSTT
from getpatter.tools.webhook import WebhookCaller
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.stale_http import RawRequest, RawResponse, StaleHttpServer

AUDIO = bytes(range(256)) * 8


def answer(request: RawRequest) -> RawResponse:
    """One plausible answer per vendor path (the clients under test parse them for real)."""
    if request.path.startswith("/v1/chat/completions"):
        events = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return RawResponse(content_type="text/event-stream", body=sse.encode())
    if request.path.startswith("/v1/text-to-speech/"):
        return RawResponse(content_type="audio/basic", body=AUDIO)
    if request.path.startswith("/v1/audio/transcriptions"):
        return RawResponse(body=b'{"text": "hello there"}')
    if request.path.startswith("/2010-04-01/"):
        return RawResponse(body=b'{"sid": "CA0123456789abcdef0123456789abcdef", "status": "in-progress"}')
    if request.path.startswith("/calls/"):
        return RawResponse(body=b'{"data": {"result": "ok"}}')
    return RawResponse(body=b'{"booked": true}')


async def llm_request(base_url: str) -> Callable[[], Awaitable[object]]:
    llm = OpenAILLM(api_key="sk-test", base_url=base_url + "/v1")

    async def once() -> object:
        events = [e async for e in llm.stream([{"role": "user", "content": "hi"}])]
        return "".join(e.text for e in events if isinstance(e, TextDelta))

    return once


async def tts_request(base_url: str) -> Callable[[], Awaitable[object]]:
    tts = ElevenLabsTTS(api_key="el-test", base_url=base_url, output_format="ulaw_8000")

    async def once() -> object:
        return len(b"".join([chunk async for chunk in tts.synthesize("Hello there.")]))

    return once


async def stt_request(base_url: str) -> Callable[[], Awaitable[object]]:
    stt = WhisperSTT(
        api_key="sk-test", base_url=base_url + "/v1", drop_hallucinations=False, dedupe_window_s=0
    )
    stream = await stt.open()
    tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2").tobytes()

    async def once() -> object:
        await stream.send(tone)
        await stream.finalize()
        event = await anext(aiter(stream))
        assert isinstance(event, Transcript)
        return event.text

    return once


async def twilio_request(base_url: str) -> Callable[[], Awaitable[object]]:
    client = TwilioRestClient("AC" + "0" * 32, "token", base_url=base_url)

    async def once() -> object:
        return (await client.fetch_call("CA0123456789abcdef0123456789abcdef"))["status"]

    return once


async def telnyx_request(base_url: str) -> Callable[[], Awaitable[object]]:
    client = TelnyxRestClient("KEY-test", base_url=base_url)

    async def once() -> object:
        return await client.hangup("v3:call-1")

    return once


async def webhook_request(base_url: str) -> Callable[[], Awaitable[object]]:
    caller = WebhookCaller(allow_private=True)

    async def once() -> object:
        return await caller.call(base_url + "/book", "book", {}, {"call_id": "c1"}, timeout_s=10)

    return once


CLIENTS = {
    "openai-llm": llm_request,
    "elevenlabs-tts": tts_request,
    "whisper-stt": stt_request,
    "twilio-rest": twilio_request,
    "telnyx-rest": telnyx_request,
    "webhook-tool": webhook_request,
}


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        "retrying on a new one" in r.getMessage() for r in caplog.records if r.name == "getpatter.http"
    )


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_a_request_on_a_connection_the_server_closed_is_sent_again_once(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="getpatter.http")
    server = StaleHttpServer(answer, drop="reused")
    async with server.serving() as base_url:
        once = await CLIENTS[name](base_url)
        first = await once()
        second = await once()  # rides the kept-alive connection, which the server drops under it
    assert first == second and first
    assert server.requests_read == 3 and server.requests_dropped == 1 and server.requests_answered == 2
    assert server.connections == 2  # the retry opened a connection of its own
    assert retries_logged(caplog) == 1


@pytest.mark.parametrize("name", ["openai-llm", "elevenlabs-tts", "twilio-rest", "telnyx-rest"])
async def test_a_new_connection_that_fails_is_a_real_error_and_is_not_retried(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="getpatter.http")
    server = StaleHttpServer(answer, drop="first")
    async with server.serving() as base_url:
        once = await CLIENTS[name](base_url)
        with pytest.raises(PatterError):
            await once()
    assert server.requests_read == 1 and server.connections == 1
    assert retries_logged(caplog) == 0


@pytest.mark.parametrize("name", ["openai-llm", "elevenlabs-tts"])
async def test_an_answer_that_had_started_is_never_requested_again(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="getpatter.http")
    server = StaleHttpServer(answer, drop="mid_response")
    async with server.serving() as base_url:
        once = await CLIENTS[name](base_url)
        assert await once()
        with pytest.raises(PatterError):
            await once()
    # No duplicate synthesis or completion: the server saw the second request exactly once.
    assert server.requests_read == 2 and server.connections == 1
    assert retries_logged(caplog) == 0


async def test_waves_of_streams_back_to_back_and_after_the_server_idle_timeout_all_succeed() -> None:
    server = StaleHttpServer(answer, idle_close_s=0.3)
    async with server.serving() as base_url:
        tts = ElevenLabsTTS(api_key="el-test", base_url=base_url, output_format="ulaw_8000")

        async def speak() -> int:
            return len(b"".join([chunk async for chunk in tts.synthesize("Hello there.")]))

        async def wave() -> list[int]:
            return await asyncio.wait_for(asyncio.gather(*(speak() for _ in range(30))), 60)

        waves = [await wave(), await wave()]
        await asyncio.sleep(0.8)  # every kept-alive connection has now been closed by the server
        waves.append(await wave())
        await tts.close()
    assert all(n == len(AUDIO) for w in waves for n in w)
    assert server.requests_answered == 90
