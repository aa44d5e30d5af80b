"""Driving an STT stream in unit tests: feed it audio in frames, collect what it says."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from getpatter.stt.base import STTEvent, Transcript
from tests.fakes.server import running


@contextlib.asynccontextmanager
async def serve(fake: Any, path: str = "") -> AsyncIterator[str]:
    """Run the vendor fake ``fake.app`` on 127.0.0.1; yields its base URL (plus ``path``, e.g. ``/v1``)."""
    async with running(fake.app) as srv:
        yield srv.http_url + path


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


async def until_final(stream: Any) -> list[STTEvent]:
    """Every event up to and including the first final transcript (all of them if none comes; 5 s cap)."""
    events: list[STTEvent] = []
    async with asyncio.timeout(5):
        async for ev in stream:
            events.append(ev)
            if isinstance(ev, Transcript) and ev.is_final:
                break
    return events
