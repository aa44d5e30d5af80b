"""``ResilientSTTStream.finalize_turn`` tells the turn logic whether a final is on its way."""

from __future__ import annotations

import asyncio

from getpatter.call.retry import RetryPolicy
from getpatter.call.stt_link import ResilientSTTStream
from getpatter.stt.deepgram import DeepgramSTT
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.server import running

SILENCE_100MS = bytes(3200)  # PCM16 16 kHz


async def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    async def until() -> None:
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until(), timeout)


async def test_finalize_turn_is_true_only_when_the_live_stream_got_it() -> None:
    fake = FakeDeepgram()
    async with running(fake.app) as srv:
        errors: list[tuple[str, bool]] = []
        link = ResilientSTTStream(
            DeepgramSTT(api_key=fake.api_key, base_url=srv.ws_url),
            on_error=lambda exc, recovering: errors.append((str(exc), recovering)),
            retry=RetryPolicy(attempts=2, backoff_s=(0.5,)),
        )
        await link.start()
        await link.send(SILENCE_100MS)
        assert await link.finalize_turn() is True
        await _wait_for(lambda: any(c.get("type") == "Finalize" for c in fake.control_messages))

        # The vendor drops the socket: while the link waits to reconnect, a finalize goes nowhere.
        fake.drop_after_seconds = 0.0
        while not errors:
            await link.send(SILENCE_100MS)
            await asyncio.sleep(0.02)
        fake.drop_after_seconds = None
        assert errors[0][1] is True  # reported as recovering
        assert await link.finalize_turn() is False

        await _wait_for(lambda: link.reconnects == 1)
        assert await link.finalize_turn() is True
        await _wait_for(lambda: any(c.get("type") == "Finalize" for c in fake.connections[1].controls))

        await link.close()
        assert await link.finalize_turn() is False


async def test_caller_frames_reach_the_vendor_in_40_ms_messages_and_flush_sends_at_once() -> None:
    fake = FakeDeepgram()
    async with running(fake.app) as srv:
        link = ResilientSTTStream(DeepgramSTT.for_twilio(api_key=fake.api_key, base_url=srv.ws_url))
        await link.start()
        link.caller_speaking(True)
        frame = b"\xff" * 160  # one 20 ms mu-law carrier frame
        for _ in range(6):
            await link.send(frame)
        await _wait_for(lambda: sum(fake.connections[0].frame_sizes) == 960)
        assert fake.connections[0].frame_sizes == [320, 320, 320]  # one message per two frames
        await link.send(frame)  # half a message: held back ...
        await link.flush()  # ... until the pipeline says the silence after speech is being timed
        await _wait_for(lambda: len(fake.connections[0].frame_sizes) == 4)
        assert fake.connections[0].frame_sizes[-1] == 160
        await link.send(frame)
        assert await link.finalize_turn() is True  # finalize sends what is pending first
        await _wait_for(lambda: any(c.get("type") == "Finalize" for c in fake.control_messages))
        assert sum(fake.connections[0].frame_sizes) == 8 * 160
        await link.close()


async def test_while_the_caller_is_quiet_frames_go_in_100_ms_messages_until_speech_starts() -> None:
    fake = FakeDeepgram()
    async with running(fake.app) as srv:
        link = ResilientSTTStream(DeepgramSTT.for_twilio(api_key=fake.api_key, base_url=srv.ws_url))
        await link.start()
        frame = b"\xff" * 160
        link.caller_speaking(False)
        for _ in range(13):  # 260 ms of quiet: two 100 ms messages, 60 ms held back
            await link.send(frame)
        await _wait_for(lambda: sum(fake.connections[0].frame_sizes) == 1600)
        assert fake.connections[0].frame_sizes == [800, 800]
        link.caller_speaking(True)  # speech: what is pending goes with the next frame, then 40 ms pieces
        await link.send(frame)
        await _wait_for(lambda: len(fake.connections[0].frame_sizes) == 3)
        assert fake.connections[0].frame_sizes[-1] == 4 * 160
        for _ in range(2):
            await link.send(frame)
        await _wait_for(lambda: len(fake.connections[0].frame_sizes) == 4)
        assert fake.connections[0].frame_sizes[-1] == 320
        await link.close()
