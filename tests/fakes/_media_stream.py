"""The carrier's side of one media WebSocket, shared by the Twilio and Telnyx fakes.

Both carriers open the socket as a client, number every frame they send, pace caller audio on an
absolute 20 ms clock, echo marks when playback reaches them and end a stream with ``stop`` + close 1000
(a hang-up) or an aborted TCP connection (a dropped network). :class:`MediaStreamSide` holds that
machinery; each carrier's call class adds its wire format: the ``start`` message, the sequence-number
key, the ``stop`` body, the ``media`` frame and the checks on what the server sends.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.fakes._patience import patient
from tests.fakes._playback import PlaybackBuffer

FRAME_SECONDS = 0.020


@dataclass
class Utterance:
    """Caller audio queued for the pacer; ``done`` resolves once its last byte went out."""

    data: bytes
    is_speech: bool
    done: asyncio.Future[None]
    pos: int = 0


class MediaStreamSide:
    """Socket, sequencing, pacing, ending and waits of one carrier media stream (a mixin of the fake's
    call dataclass, which owns the fields named below and calls :meth:`_init_stream` from
    ``__post_init__``)."""

    #: The key the carrier numbers its frames under (``sequenceNumber`` / ``sequence_number``).
    SEQ_KEY: str
    ended_by: str | None
    close_code: int | None
    received: list[Any]
    speech_onsets: list[float]

    # ---- hooks for the carrier's call class -----------------------------------------------------------

    @property
    def call_label(self) -> str:
        """The call's id as error messages name it."""
        raise NotImplementedError

    def _stop_message(self) -> dict[str, Any]:
        """The ``stop`` the carrier sends when the caller (or its REST API) ends the stream."""
        raise NotImplementedError

    def _on_finish(self) -> None:
        """Carrier bookkeeping when the stream has ended (call status, callbacks)."""

    async def _pace(self) -> None:
        raise NotImplementedError

    async def _handle(self, message: str | bytes, now: float) -> None:
        raise NotImplementedError

    # ---- lifecycle ------------------------------------------------------------------------------------

    def _init_stream(self, echo_mark: Callable[[str, bool], Awaitable[None]]) -> None:
        self._ws: ClientConnection | None = None
        self._seq = 0
        self._send_lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pacer: asyncio.Task[None] | None = None
        self._utterances: collections.deque[Utterance] = collections.deque()
        self._playback = PlaybackBuffer(echo_mark)

    def _start_stream_tasks(self, carrier: str) -> None:
        """After ``start``: the reader, the mark pump and the pacer."""
        label = f"fake-{carrier}-{{}}-{self.call_label}"
        self._spawn(self._read(), label.format("read"))
        self._spawn(self._playback.pump_marks(), label.format("marks"))
        self._pacer = self._spawn(self._pace(), label.format("pacer"))

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    @property
    def connected(self) -> bool:
        """The media stream is up (started and not yet ended by anyone)."""
        return self._ws is not None and not self._closed.is_set()

    async def _send(self, event: dict[str, Any]) -> bool:
        """Send one message, numbering it; False if the socket is gone."""
        ws = self._ws
        if ws is None or self._closed.is_set():
            return False
        async with self._send_lock:
            self._seq += 1
            event[self.SEQ_KEY] = str(self._seq)
            try:
                await ws.send(json.dumps(event))
            except ConnectionClosed:
                return False
        return True

    def _finish(self, ended_by: str) -> None:
        if self.ended_by is None:
            self.ended_by = ended_by
        if self._pacer is not None:
            self._pacer.cancel()
        self._release(list(self._utterances))
        self._utterances.clear()
        self._closed.set()
        self._on_finish()

    @staticmethod
    def _release(finished: list[Utterance]) -> None:
        for utt in finished:
            if not utt.done.done():
                utt.done.set_result(None)

    async def _end_stream(self, ended_by: str, *, send_stop: bool) -> None:
        if self._ws is None or self._closed.is_set():
            if self.ended_by is None:
                self._finish(ended_by)
            return
        ws = self._ws
        if self._pacer is not None:
            self._pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        if send_stop:
            await self._send(self._stop_message())
        self._finish(ended_by)
        if send_stop:
            with contextlib.suppress(Exception):
                await ws.close(1000)
        else:
            ws.transport.abort()

    async def end_by_carrier(self, ended_by: str) -> None:
        """The carrier ends the stream (REST hang-up, transfer, new TwiML): ``stop``, then close 1000."""
        await self._end_stream(ended_by, send_stop=True)

    async def aclose(self) -> None:
        """Stop all background work and close the socket (test teardown; records nothing new)."""
        if self._ws is not None and not self._closed.is_set():
            self._finish(self.ended_by or "teardown")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(1000), 2)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- caller actions -------------------------------------------------------------------------------

    async def _queue(self, audio: bytes, *, is_speech: bool) -> None:
        if not self.connected:
            raise RuntimeError(f"call {self.call_label} has no live media stream")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._utterances.append(Utterance(audio, is_speech, done))
        await done

    def _take_frame(self, size: int, silence: bytes, now: float) -> tuple[bytes, bool, list[Utterance]]:
        """The next ``size`` bytes of queued caller audio, padded with ``silence``: ``(frame, has_speech,
        utterances finished by it)``. A speech utterance's first byte records a ``speech_onsets`` time."""
        frame = bytearray()
        speech = False
        finished: list[Utterance] = []
        while len(frame) < size and self._utterances:
            utt = self._utterances[0]
            if utt.pos == 0 and utt.is_speech:
                self.speech_onsets.append(now)
            speech = speech or utt.is_speech
            take = utt.data[utt.pos : utt.pos + size - len(frame)]
            frame += take
            utt.pos += len(take)
            if utt.pos >= len(utt.data):
                finished.append(self._utterances.popleft())
        if len(frame) < size:
            frame += (silence * (size // max(1, len(silence)) + 1))[: size - len(frame)]
        return bytes(frame), speech, finished

    async def _pace_frames(self, next_frame: Callable[[int, float], Awaitable[bool]]) -> None:
        """Call ``next_frame(n, now)`` (send frame ``n``, from 1) every 20 ms on an absolute-deadline
        clock until it returns False (the socket is gone)."""
        t0 = time.monotonic()
        n = 0
        while True:
            delay = t0 + n * FRAME_SECONDS - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            n += 1
            if not await next_frame(n, time.monotonic()):
                return

    async def send_raw(self, text: str) -> None:
        """Send ``text`` verbatim (no sequence number): for malformed-frame tests."""
        if self._ws is None:
            raise RuntimeError(f"call {self.call_label} has no media stream")
        async with self._send_lock:
            await self._ws.send(text)

    async def hangup(self) -> None:
        """The caller hangs up: ``stop``, then close 1000. ``ended_by == "caller-hangup"``."""
        await self._end_stream("caller-hangup", send_stop=True)

    async def drop(self) -> None:
        """The network drops: the TCP connection is aborted, no ``stop``, no close frame."""
        await self._end_stream("caller-drop", send_stop=False)

    # ---- what the server sends ------------------------------------------------------------------------

    async def _read(self) -> None:
        assert self._ws is not None
        ws = self._ws
        try:
            async for message in ws:
                await self._handle(message, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            if not self._closed.is_set():
                self.close_code = ws.close_code
                self._finish("server-closed")
            async with self._changed:
                self._changed.notify_all()

    # ---- waits ----------------------------------------------------------------------------------------

    async def wait_for_agent_audio(self, timeout: float = 5.0, *, after: float | None = None) -> float:
        """Wait for a ``media`` message from the server received later than ``after`` (default: any).

        Returns its receive time. Pass e.g. ``after=call.speech_onsets[-1]`` to wait for the reply to the
        latest caller turn.
        """
        floor = -math.inf if after is None else after

        def found() -> float | None:
            start = bisect.bisect_right(self.received, floor, key=lambda r: r.time)
            for i in range(start, len(self.received)):
                if self.received[i].kind == "media":
                    return float(self.received[i].time)
            return None

        async def wait() -> float:
            async with self._changed:
                while (t := found()) is None:
                    if self._closed.is_set():
                        raise TimeoutError(
                            f"call {self.call_label} ended ({self.ended_by}) before agent audio"
                        )
                    await self._changed.wait()
                return t

        try:
            return await asyncio.wait_for(wait(), patient(timeout))
        except TimeoutError as exc:
            if str(exc):
                raise
            raise TimeoutError(f"no agent audio on call {self.call_label} within {timeout} s") from None

    async def wait_agent_quiet(
        self, quiet_ms: float = 500.0, timeout: float = 10.0, *, after_mark: bool = True
    ) -> None:
        """Wait until the playback buffer is empty, the last segment closed by its mark, and no media has
        arrived for ``quiet_ms``.

        If no media ever arrived, quiet is counted from the call of this method.
        """
        await self._playback.wait_quiet(quiet_ms, timeout, self.call_label, after_mark=after_mark)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        """Wait until the stream ended: the server closed the socket, or the stream was stopped."""
        try:
            await asyncio.wait_for(self._closed.wait(), patient(timeout))
        except TimeoutError:
            raise TimeoutError(f"call {self.call_label} media stream still open after {timeout} s") from None


__all__ = ["FRAME_SECONDS", "MediaStreamSide", "Utterance"]
