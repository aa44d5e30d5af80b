"""The call layer's one retry policy, as the speaker and the STT link apply it, on virtual time."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

import pytest

from getpatter.audio.format import MULAW_8K
from getpatter.call.playout import Playout
from getpatter.call.retry import REPLY_RETRY, SPEAKER_RETRY, STT_RECONNECT, RetryPolicy
from getpatter.call.speaker import Speaker
from getpatter.call.stt_link import ResilientSTTStream
from getpatter.carriers.twilio.media import TwilioMediaCodec
from getpatter.errors import (
    AuthenticationError,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    RateLimitError,
)
from tests.unit._vendors import ScriptedSTT, ScriptedTTS
from tests.unit._virtual_clock import VirtualClock

# -- the policy ---------------------------------------------------------------------------------------


def test_backoff_follows_the_table_and_its_last_value_repeats() -> None:
    policy = RetryPolicy(attempts=6, backoff_s=(0.2, 0.5, 1.0))
    assert [policy.wait_s(n) for n in range(1, 6)] == [0.2, 0.5, 1.0, 1.0, 1.0]
    assert [STT_RECONNECT.wait_s(n) for n in range(1, 5)] == [0.2, 0.5, 1.0, 2.0]


def test_rate_limits_wait_their_retry_after_capped_or_a_default() -> None:
    assert SPEAKER_RETRY.wait_s(1, RateLimitError("429", retry_after=2.0)) == 2.0
    assert SPEAKER_RETRY.wait_s(1, RateLimitError("429", retry_after=60.0)) == 3.0
    assert SPEAKER_RETRY.wait_s(1, RateLimitError("429")) == 0.5
    assert REPLY_RETRY.wait_s(1, RateLimitError("429", retry_after=60.0)) == 5.0
    assert SPEAKER_RETRY.wait_s(1, PatterConnectionError("reset")) == 0.0
    # Without a rate-limit rule, a 429 waits the plain backoff.
    assert STT_RECONNECT.wait_s(2, RateLimitError("429", retry_after=60.0)) == 0.5


def test_which_errors_retry() -> None:
    assert STT_RECONNECT.should_retry(1, PatterConnectionError("dropped"))
    assert not STT_RECONNECT.should_retry(1, AuthenticationError("bad key"))
    assert not STT_RECONNECT.should_retry(1, PatterConfigError("bad option"))
    assert not STT_RECONNECT.should_retry(5, PatterConnectionError("dropped"))  # out of attempts
    assert REPLY_RETRY.should_retry(1, RateLimitError("429"))
    assert not REPLY_RETRY.should_retry(1, PatterConnectionError("reset"))  # FallbackLLM's job
    assert not REPLY_RETRY.should_retry(2, RateLimitError("429"))
    assert SPEAKER_RETRY.should_retry(1, AuthenticationError("bad key"))  # a mute agent is worse
    assert not SPEAKER_RETRY.should_retry(1, ValueError("not ours"))  # type: ignore[arg-type]


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(PatterConfigError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(PatterConfigError, match="backoff_s"):
        RetryPolicy(attempts=2, backoff_s=())


# -- the speaker --------------------------------------------------------------------------------------


@asynccontextmanager
async def speaker(tts: ScriptedTTS, retry: RetryPolicy = SPEAKER_RETRY) -> Any:
    clock = VirtualClock()
    sent: list[str] = []

    async def send(message: str) -> None:
        sent.append(message)

    playout = Playout(TwilioMediaCodec("MZ1"), send, clock=clock)
    playout.start()
    try:
        yield Speaker(tts, playout, MULAW_8K, retry=retry, clock=clock), clock
    finally:
        await playout.close()


async def test_a_sentence_whose_tts_failed_before_any_audio_is_spoken_on_the_second_try() -> None:
    tts = ScriptedTTS()
    tts.failures = [PatterConnectionError("TTS socket reset")]
    errors: list[tuple[str, bool]] = []
    async with speaker(tts) as (spk, clock):
        assert await spk.say_with_retry("Hello there.", lambda e, again: errors.append((str(e), again)))
        assert tts.requests == ["Hello there.", "Hello there."]
        assert errors == [("TTS socket reset", True)]
        assert spk.bytes_pushed == MULAW_8K.bytes_for_ms(len("Hello there.") * 10)
        assert clock.sleepers <= 1  # no retry wait left behind (the playout may be pacing)


async def test_a_rate_limited_sentence_waits_the_retry_after_on_the_call_clock() -> None:
    tts = ScriptedTTS()
    tts.failures = [RateLimitError("429", retry_after=2.0)]
    async with speaker(tts) as (spk, clock):
        task = asyncio.ensure_future(spk.say_with_retry("Hi.", lambda e, again: None))
        await clock.advance(1.99)
        assert len(tts.requests) == 1 and not task.done()
        await clock.advance(0.02)
        assert len(tts.requests) == 2 and task.done() and task.result() is True


async def test_a_sentence_that_failed_after_some_audio_is_not_repeated() -> None:
    tts = ScriptedTTS(fail_after_bytes=1600)
    tts.failures = [PatterConnectionError("cut")]
    errors: list[bool] = []
    async with speaker(tts) as (spk, _clock):
        assert await spk.say_with_retry("A longer sentence here.", lambda e, again: errors.append(again))
        assert len(tts.requests) == 1 and spk.bytes_pushed > 0
        assert errors == [True]


async def test_a_tts_that_keeps_failing_leaves_the_agent_mute_and_says_so() -> None:
    tts = ScriptedTTS()
    tts.failures = [PatterConnectionError("down"), PatterConnectionError("still down")]
    errors: list[bool] = []
    async with speaker(tts) as (spk, _clock):
        assert not await spk.say_with_retry("Hello.", lambda e, again: errors.append(again))
        assert errors == [True, False] and spk.bytes_pushed == 0


async def test_the_speaker_follows_the_policy_it_is_given() -> None:
    tts = ScriptedTTS()
    tts.failures = [PatterConnectionError("1"), PatterConnectionError("2")]
    async with speaker(tts, RetryPolicy(attempts=3, backoff_s=(0.5,))) as (spk, clock):
        task = asyncio.ensure_future(spk.say_with_retry("Hi.", lambda e, again: None))
        await clock.advance(0.49)
        assert len(tts.requests) == 1
        await clock.advance(0.5)
        assert len(tts.requests) == 2
        await clock.advance(0.5)
        assert len(tts.requests) == 3 and task.result() is True


# -- the STT link -------------------------------------------------------------------------------------


@asynccontextmanager
async def link(stt: ScriptedSTT) -> Any:
    clock = VirtualClock()
    errors: list[tuple[PatterError, bool]] = []
    stream = ResilientSTTStream(stt, on_error=lambda e, again: errors.append((e, again)), clock=clock)
    await stream.start()
    try:
        yield stream, errors, clock
    finally:
        await stream.close()


async def test_a_dropped_stt_socket_is_reopened_after_the_backoff_and_unfinalized_audio_replayed() -> None:
    stt = ScriptedSTT()
    async with link(stt) as (stream, errors, clock):
        await stream.send(b"\x01\x00" * 800)
        stt.streams[0].drop(PatterConnectionError("vendor went away"))
        await clock.advance(0.19)
        assert [again for _, again in errors] == [True] and len(stt.streams) == 1
        await clock.advance(0.02)
        assert len(stt.streams) == 2 and stream.reconnects == 1
        assert bytes(stt.streams[1].audio) == b"\x01\x00" * 800  # replayed first
        await stream.send(b"\x02\x00")  # under the coalescing size: held until flushed
        assert not bytes(stt.streams[1].audio).endswith(b"\x02\x00")
        await stream.flush()
        assert bytes(stt.streams[1].audio).endswith(b"\x02\x00")


async def test_a_refused_key_is_not_retried() -> None:
    stt = ScriptedSTT()
    async with link(stt) as (stream, errors, clock):
        stt.streams[0].drop(AuthenticationError("bad key"))
        await clock.advance(10.0)
        assert [again for _, again in errors] == [False] and len(stt.streams) == 1
        assert [e async for e in stream] == []  # the transcript stream ends


async def test_reconnecting_gives_up_after_the_policys_attempts() -> None:
    stt = ScriptedSTT()
    async with link(stt) as (_stream, errors, clock):
        stt.refuse = [PatterConnectionError("refused")] * 4
        stt.streams[0].drop(PatterConnectionError("dropped"))
        await clock.advance(0.2 + 0.5 + 1.0 + 2.0 - 0.01)
        assert len(errors) == 1 and stt.refuse  # the fourth try is still to come
        await clock.advance(0.02)
        assert not stt.refuse and [again for _, again in errors] == [True, False]
        assert "could not be reconnected" in str(errors[-1][0])
