"""Driving a TTS provider in unit tests: checks every HTTP TTS must pass, whatever the vendor."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol


class StallingFake(Protocol):
    """A vendor fake that can stall mid-response and counts how each response ended."""

    stall_after_bytes: int | None
    aborted_event: asyncio.Event
    aborted: int
    completed: int


async def cancel_after_first_chunk(tts: Any, text: str = "A sentence long enough to stall midway.") -> None:
    """Consume ``tts.synthesize(text)`` until its first chunk arrives, then cancel the consumer (as a
    barge-in does) and wait until it is gone."""
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in tts.synthesize(text):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def cancel_mid_stream(tts: Any, fake: StallingFake) -> tuple[int, int]:
    """Cancel the consumer of ``tts.synthesize`` mid-response (the fake stalls after 3000 bytes) and wait
    until the fake sees the client go away; returns the fake's ``(aborted, completed)`` responses. A TTS
    that closes its HTTP stream on cancel gives ``(1, 0)``: aborted once, never read to its end."""
    fake.stall_after_bytes = 3000
    await cancel_after_first_chunk(tts)
    await asyncio.wait_for(fake.aborted_event.wait(), 5)
    return fake.aborted, fake.completed
