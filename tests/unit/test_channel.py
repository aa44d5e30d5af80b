"""``EventChannel``: events in order, then the end -- its error raised exactly once, then a clean stop."""

from __future__ import annotations

import pytest

from getpatter._channel import EventChannel, StreamEnd
from getpatter.errors import PatterConnectionError


async def test_events_then_the_error_once_then_stop_for_good() -> None:
    channel: EventChannel[str] = EventChannel()
    channel.put_nowait("a")
    channel.put_nowait("b")
    channel.put_nowait(StreamEnd(PatterConnectionError("vendor dropped the socket")))
    channel.put_nowait("never delivered")
    assert [await channel.next(), await channel.next()] == ["a", "b"]
    with pytest.raises(PatterConnectionError, match="dropped"):
        await channel.next()
    assert channel.finished
    for _ in range(2):
        with pytest.raises(StopAsyncIteration):
            await channel.next()


async def test_a_clean_end_just_stops() -> None:
    channel: EventChannel[int] = EventChannel()
    channel.put_nowait(1)
    channel.put_nowait(StreamEnd())
    assert await channel.next() == 1
    with pytest.raises(StopAsyncIteration):
        await channel.next()
