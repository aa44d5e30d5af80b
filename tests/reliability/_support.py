"""Helpers for the reliability tests: polling, resource counts, a raw media-stream client, a server run in a
background thread (for synchronous hypothesis tests), and a whole-call harness with chosen secrets.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.fakes.openai_chat import Reply
from tests.fakes.server import Running, running
from tests.fakes.twilio import new_sid
from tests.integration.harness import NUMBER, PUBLIC_HOST, Harness, VendorKeys, call_harness

__all__ = [
    "NUMBER",
    "PUBLIC_HOST",
    "RawStream",
    "ThreadedApps",
    "fd_count",
    "harness_with_keys",
    "until",
]


async def until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> None:
    """Poll ``predicate`` (state the fakes/product record, with no event for it) up to ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


def fd_count() -> int:
    """Open file descriptors of this process (sockets included)."""
    return len(os.listdir("/proc/self/fd"))


# -- a raw Twilio media stream: every frame under the test's control ------------------------------------


class RawStream:
    """A bare Twilio media-stream client for fault injection (no pacer, no reader logic)."""

    def __init__(
        self, ws: ClientConnection, call_sid: str, stream_sid: str, params: dict[str, str] | None = None
    ) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        #: ``customParameters`` of ``start``: what the server's answer said (with its stream token).
        self.params = params if params is not None else {"caller": "+15550001111", "callee": NUMBER}
        self.seq = 0
        self.received: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        server: Running,
        call_sid: str | None = None,
        *,
        path: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> RawStream:
        sid = call_sid or new_sid("CA")
        ws = await connect(
            server.ws_url + (path or f"/ws/stream/{sid}"),
            additional_headers=headers or {},
            open_timeout=5,
            close_timeout=2,
        )
        return cls(ws, sid, new_sid("MZ"))

    @classmethod
    async def dial(cls, h: Harness, call_sid: str | None = None) -> RawStream:
        """A stream for a call the product answered: its voice webhook is posted first (signed, as Twilio
        does), and ``start`` echoes the answer's parameters, stream token included."""
        sid = call_sid or new_sid("CA")
        params = await h.stream_params(sid)
        stream = await cls.open(h.server, sid)
        stream.params = params
        return stream

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws:
                self.received.append(message if isinstance(message, str) else repr(message))

    async def send(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event.setdefault("sequenceNumber", str(self.seq))
        await self.ws.send(json.dumps(event))

    def start_event(self, caller: str = "+15550001111", callee: str = NUMBER) -> dict[str, Any]:
        return {
            "event": "start",
            "start": {
                "accountSid": "AC" + "0" * 31 + "1",
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": {**self.params, "caller": caller, "callee": callee},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
            "streamSid": self.stream_sid,
        }

    async def start(self) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self.send(self.start_event())

    def media_event(self, mulaw: bytes, chunk: int, *, seq: int | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event": "media",
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str((chunk - 1) * 20),
                "payload": base64.b64encode(mulaw).decode("ascii"),
            },
            "streamSid": self.stream_sid,
        }
        if seq is not None:
            event["sequenceNumber"] = str(seq)
        return event

    async def stop(self, stream_sid: str | None = None, call_sid: str | None = None) -> None:
        await self.send(
            {
                "event": "stop",
                "stop": {"accountSid": "AC" + "0" * 31 + "1", "callSid": call_sid or self.call_sid},
                "streamSid": stream_sid or self.stream_sid,
            }
        )

    def agent_media_count(self) -> int:
        return sum(1 for m in self.received if '"event":"media"' in m.replace(" ", ""))

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close(code)
        await self.aclose()

    def abort(self) -> None:
        self.ws.transport.abort()

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)


# -- ASGI apps served from a background thread (for synchronous property tests) -------------------------


class ThreadedApps:
    """Serve ASGI apps on 127.0.0.1 from a private event loop in a background thread.

    ``build(loop_servers)`` runs inside that loop once the ``extra`` apps are up (it gets their
    ``Running`` addresses) and returns the main app, so product objects are created on the loop that
    serves them.
    """

    def __init__(self, build: Callable[[list[Running]], Any], extra: Sequence[Any] = ()) -> None:
        self._build = build
        self._extra = list(extra)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.server: Running | None = None
        self.extra_servers: list[Running] = []
        self.app: Any = None
        self._thread = threading.Thread(target=self._run, name="reliability-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            for app in self._extra:
                self.extra_servers.append(await stack.enter_async_context(running(app)))
            self.app = self._build(self.extra_servers)
            self.server = await stack.enter_async_context(running(self.app))
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ThreadedApps:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        assert self.server is not None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)


# -- a whole-call harness whose vendor keys the test chooses --------------------------------------------


def harness_with_keys(
    *,
    twilio_auth_token: str,
    deepgram_key: str,
    openai_key: str,
    elevenlabs_key: str,
    utterances: Sequence[str] = (),
    replies: Sequence[Reply | str] = (),
    first_message: str = "Hello, thanks for calling.",
    ms_per_char: float = 5.0,
    agent_kwargs: dict[str, Any] | None = None,
    dashboard: bool = False,
) -> contextlib.AbstractAsyncContextManager[Harness]:
    """``tests.integration.harness.call_harness`` with the four secrets set by the test (and the
    dashboard/API routes mounted, without a token, when ``dashboard``)."""
    return call_harness(
        keys=VendorKeys(twilio_auth_token, deepgram_key, openai_key, elevenlabs_key),
        utterances=utterances,
        replies=replies,
        first_message=first_message,
        ms_per_char=ms_per_char,
        agent_kwargs=agent_kwargs,
        serve_kwargs={"dashboard": dashboard, "allow_insecure_dashboard": True},
    )


@contextlib.contextmanager
def env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
