"""The caller's side of one simulated call over the Twilio Media Streams protocol.

A single 20 ms clock drives everything, like the carrier: each tick sends one caller frame (queued speech
or silence), plays 20 ms of the agent audio the server sent, and echoes the marks whose audio has now
played. ``clear`` drops unplayed agent audio and echoes pending marks at once. Both tracks are recorded on
the same clock, so the stereo recording shows real overlaps and gaps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import time
import wave
from collections import deque
from typing import Any

import numpy as np
import orjson
from websockets.asyncio.client import ClientConnection

from getpatter.audio.convert import FormatConverter
from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.audio.g711 import mulaw_to_pcm16

FRAME = 160  # 20 ms of mu-law at 8 kHz
SILENCE = b"\xff" * FRAME


class SimulatedCall:
    def __init__(self, ws: ClientConnection, call_sid: str, stream_sid: str) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self._to_wire = FormatConverter(PCM16_16K, MULAW_8K)
        self._speech: deque[tuple[bytes, asyncio.Future[None] | None]] = deque()
        self._agent = bytearray()  # sent by the server, not yet played
        self._marks: deque[tuple[int, str]] = deque()  # (position in the agent stream, name)
        self._agent_received = 0  # bytes of agent audio received so far (positions for marks)
        self._agent_played_pos = 0
        self.caller_track = bytearray()
        self.agent_track = bytearray()
        self.ended = asyncio.Event()
        self.ended_by = ""
        self.last_agent_audio = 0.0  # monotonic time agent audio last played
        self.agent_started = asyncio.Event()
        self._seq = 1
        self._chunk = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._tick = asyncio.Event()  # set on every 20 ms clock tick

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self, account_sid: str, params: dict[str, str]) -> None:
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "sequenceNumber": "1",
                "streamSid": self.stream_sid,
                "start": {
                    "accountSid": account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": params,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }
        )
        self._tasks = [asyncio.create_task(self._clock()), asyncio.create_task(self._listen())]

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then close."""
        if not self.ended.is_set():
            with contextlib.suppress(Exception):
                await self._send({"event": "stop", "stop": {"callSid": self.call_sid}})
            await self.end("caller")

    async def end(self, by: str) -> None:
        if self.ended.is_set():
            return
        self.ended_by = by
        self.ended.set()
        self._tick.set()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()

    # -- caller actions ------------------------------------------------------------------------------
    async def say(self, pcm16_16k: bytes) -> None:
        """Speak: queue 16 kHz PCM16 and wait until it has all been sent."""
        wire = self._to_wire.process(pcm16_16k) + self._to_wire.flush()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        frames = [wire[i : i + FRAME].ljust(FRAME, b"\xff") for i in range(0, len(wire), FRAME)]
        for frame in frames[:-1]:
            self._speech.append((frame, None))
        self._speech.append((frames[-1] if frames else SILENCE, done))
        await done

    async def press(self, digit: str) -> None:
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def wait_for_reply(self, *, quiet_ms: float = 700.0, timeout: float = 30.0) -> None:
        """Wait for the agent to start speaking after now, and then to be quiet for ``quiet_ms``."""
        started = time.monotonic()

        def replied_and_quiet() -> bool:
            if self.last_agent_audio < started:
                return False
            return not self._agent and time.monotonic() - self.last_agent_audio >= quiet_ms / 1000.0

        async def until() -> None:
            while not self.ended.is_set() and not replied_and_quiet():
                await self._tick.wait()
                self._tick.clear()

        await asyncio.wait_for(until(), timeout)

    # -- the carrier's clock -------------------------------------------------------------------------
    async def _clock(self) -> None:
        start = time.monotonic()
        tick = 0
        try:
            while not self.ended.is_set():
                frame, done = self._speech.popleft() if self._speech else (SILENCE, None)
                tick += 1
                await self._send(
                    {
                        "event": "media",
                        "sequenceNumber": str(self._next_seq()),
                        "streamSid": self.stream_sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(tick),
                            "timestamp": str(tick * 20),
                            "payload": base64.b64encode(frame).decode(),
                        },
                    }
                )
                if done is not None and not done.done():
                    done.set_result(None)
                self.caller_track += frame
                played = bytes(self._agent[:FRAME])
                del self._agent[:FRAME]
                if played:
                    self.last_agent_audio = time.monotonic()
                    self._agent_played_pos += len(played)
                self.agent_track += played.ljust(FRAME, b"\xff")
                await self._echo_played_marks()
                self._tick.set()
                await asyncio.sleep(max(0.0, start + tick * 0.02 - time.monotonic()))
        except Exception:
            await self.end("socket")

    async def _echo_played_marks(self) -> None:
        while self._marks and self._marks[0][0] <= self._agent_played_pos:
            _, name = self._marks.popleft()
            await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _listen(self) -> None:
        try:
            async for raw in self.ws:
                msg: dict[str, Any] = orjson.loads(raw)
                kind = msg.get("event")
                if kind == "media":
                    audio = base64.b64decode(msg["media"]["payload"])
                    self._agent += audio
                    self._agent_received += len(audio)
                    self.agent_started.set()
                elif kind == "mark":
                    self._marks.append((self._agent_received, msg["mark"]["name"]))
                elif kind == "clear":
                    self._agent_played_pos = self._agent_received  # what was queued is gone
                    self._agent.clear()
                    await self._echo_played_marks()
        except Exception:
            pass
        await self.end("server")

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- results -------------------------------------------------------------------------------------
    def stereo_wav(self) -> bytes:
        """The call as a 16-bit 8 kHz stereo WAV: left the caller, right the agent."""
        n = min(len(self.caller_track), len(self.agent_track))
        left = np.frombuffer(mulaw_to_pcm16(bytes(self.caller_track[:n])), dtype="<i2")
        right = np.frombuffer(mulaw_to_pcm16(bytes(self.agent_track[:n])), dtype="<i2")
        frames = np.empty(2 * len(left), dtype="<i2")
        frames[0::2], frames[1::2] = left, right
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(frames.tobytes())
        return out.getvalue()
