"""A self-healing STT stream: reconnects after a drop and replays what the vendor had not finalized.

Audio sent since the last final transcript is kept (bounded); when the vendor's socket drops, a new
stream is opened with backoff and that audio is sent again first, so words said just before or during
the outage are still transcribed (how often and how patiently: ``STT_RECONNECT``, a
:class:`~getpatter.call.retry.RetryPolicy`). Each drop is reported through ``on_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from getpatter.call.clock import SYSTEM_CLOCK, Clock
from getpatter.call.retry import STT_RECONNECT, RetryPolicy
from getpatter.errors import PatterError
from getpatter.stt.base import STT, STTEvent, STTStream, Transcript

log = logging.getLogger("getpatter.stt")

#: Unfinalized audio kept for replay, in seconds.
REPLAY_SECONDS = 30.0
#: Caller audio is sent to the vendor in pieces of at least this much while the caller speaks: one
#: WebSocket message (and one syscall) per 40 ms instead of per 20 ms carrier frame halves the per-frame
#: send cost, the largest item of a pipeline call's CPU in the issue-19 profile, for at most 20 ms of added
#: delay (finalize and close flush what is pending at once).
COALESCE_MS = 40.0
#: The same while the SDK's VAD hears no speech (most of a call: the agent talking, pauses). Nothing
#: waits on that audio: the first 40 ms piece after speech starts carries what was pending, and the
#: silence after speech is flushed frame by frame (``flush``), so only speech too soft for the SDK's VAD
#: reaches the vendor up to 80 ms later. 2.5x fewer sends in the quiet part of a call.
QUIET_COALESCE_MS = 100.0


class ResilientSTTStream(STTStream):
    def __init__(
        self,
        stt: STT,
        *,
        on_error: Callable[[PatterError, bool], None] | None = None,
        retry: RetryPolicy = STT_RECONNECT,
        clock: Clock = SYSTEM_CLOCK,
        coalesce_ms: float = COALESCE_MS,
        quiet_coalesce_ms: float = QUIET_COALESCE_MS,
    ) -> None:
        self._stt = stt
        self._on_error = on_error
        self._retry = retry
        self._clock = clock
        self._stream: STTStream | None = None
        self._replay = bytearray()
        self._pending = bytearray()  # sent to us, not yet to the vendor (under coalesce_ms)
        self._speech_coalesce = stt.input_format.bytes_for_ms(coalesce_ms)
        self._quiet_coalesce = stt.input_format.bytes_for_ms(max(coalesce_ms, quiet_coalesce_ms))
        self._coalesce = self._quiet_coalesce
        self._max_replay = int(stt.input_format.bytes_for_ms(REPLAY_SECONDS * 1000))
        self._events: asyncio.Queue[STTEvent | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self._seconds_before = 0.0  # audio billed by streams that are gone
        self.reconnects = 0

    @property
    def audio_seconds(self) -> float:  # type: ignore[override]
        current = self._stream.audio_seconds if self._stream is not None else 0.0
        return self._seconds_before + current

    async def start(self) -> None:
        self._stream = await self._stt.open()
        self._ready.set()
        self._pump = asyncio.create_task(self._run(), name="stt-link")

    def caller_speaking(self, speaking: bool) -> None:
        """Told per frame by the pipeline (its VAD's state): pieces of ``coalesce_ms`` while the caller
        speaks, of ``quiet_coalesce_ms`` while not."""
        self._coalesce = self._speech_coalesce if speaking else self._quiet_coalesce

    async def send(self, audio: bytes) -> None:
        if self._closed:
            return
        self._replay += audio
        if len(self._replay) > self._max_replay + self._max_replay // 4:
            # Trim in steps, not per frame: a full buffer would otherwise move ~1 MB every 20 ms.
            cut = len(self._replay) - self._max_replay
            del self._replay[: cut + (cut & 1)]
        if not self._pending and len(audio) >= self._coalesce:
            await self._send_live(audio)
            return
        self._pending += audio
        if len(self._pending) >= self._coalesce:
            await self._flush()

    async def flush(self) -> None:
        """Send what is pending now (the caller just went quiet: the vendor's endpointer is timing this
        silence, so it must not wait for the next frame)."""
        await self._flush()

    async def _flush(self) -> None:
        if self._pending:
            chunk = bytes(self._pending)
            self._pending.clear()
            await self._send_live(chunk)

    async def _send_live(self, audio: bytes) -> None:
        if self._ready.is_set() and self._stream is not None:
            try:
                await self._stream.send(audio)
            except PatterError:
                self._ready.clear()  # the pump notices the drop and reconnects; audio stays in replay

    async def finalize(self) -> None:
        await self.finalize_turn()

    async def finalize_turn(self) -> bool:
        """``finalize()`` that says whether the live stream got it (False while reconnecting or on error)."""
        if self._closed or not self._ready.is_set() or self._stream is None:
            return False
        await self._flush()
        try:
            await self._stream.finalize()
        except PatterError:
            return False
        return True

    def __aiter__(self) -> AsyncIterator[STTEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[STTEvent]:
        while (event := await self._events.get()) is not None:
            yield event

    async def _run(self) -> None:
        try:
            while not self._closed:
                assert self._stream is not None
                try:
                    async for event in self._stream:
                        if isinstance(event, Transcript) and event.is_final:
                            self._replay.clear()  # the vendor has committed everything so far
                        self._events.put_nowait(event)
                    if self._closed:
                        return
                    raise PatterError("the STT stream ended unexpectedly")
                except PatterError as exc:
                    if self._closed:
                        return
                    if not await self._reconnect(exc):
                        return
        finally:
            self._events.put_nowait(None)

    async def _reconnect(self, cause: PatterError) -> bool:
        self._ready.clear()
        retrying = self._retry.should_retry(1, cause)  # the stream that dropped was try 1
        if self._on_error is not None:
            self._on_error(cause, retrying)
        if not retrying:
            return False
        old, self._stream = self._stream, None
        if old is not None:
            self._seconds_before += old.audio_seconds
            with contextlib.suppress(Exception):
                await old.close()
        for attempt in range(2, self._retry.attempts + 1):
            await self._clock.sleep(self._retry.wait_s(attempt - 1))
            if self._closed:
                return False
            try:
                stream = await self._stt.open()
            except PatterError as exc:
                log.warning("STT reconnect failed: %s", exc)
                continue
            self._stream = stream
            self.reconnects += 1
            self._pending.clear()  # part of the replay
            if self._replay:
                try:
                    await stream.send(bytes(self._replay))
                except PatterError:
                    continue
            self._ready.set()
            log.info("STT reconnected (attempt %d), replayed %d bytes", self.reconnects, len(self._replay))
            return True
        if self._on_error is not None:
            self._on_error(PatterError("STT could not be reconnected"), False)
        return False

    async def close(self) -> None:
        if self._closed:
            return
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._flush()
        self._closed = True
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(BaseException):
                await self._pump
        self._events.put_nowait(None)
