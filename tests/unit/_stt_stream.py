"""Driving an STT stream in unit tests: feed it audio in frames, collect what it says."""

from __future__ import annotations

import asyncio
from typing import Any

from getpatter.stt.base import STTEvent, Transcript


async def feed(stream: Any, audio: bytes, step: int = 640) -> None:
    """Send ``audio`` in ``step``-byte frames (640 = 20 ms of PCM16 16 kHz)."""
    for i in range(0, len(audio), step):
        await stream.send(audio[i : i + step])


async def drain(stream: Any) -> list[STTEvent]:
    """Close the stream (the vendor flushes what it holds) and return every event it produced."""
    events: list[STTEvent] = []

    async def collect() -> None:
        async for ev in stream:
            events.append(ev)

    task = asyncio.create_task(collect())
    await stream.close()
    await asyncio.wait_for(task, 5)
    return events


def finals(events: list[STTEvent]) -> list[Transcript]:
    return [e for e in events if isinstance(e, Transcript) and e.is_final]
