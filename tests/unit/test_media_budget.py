"""The per-socket media budget on a fake clock: caps per second, strikes, DTMF, and the rate-limited log."""

from __future__ import annotations

import logging

import pytest

from getpatter._ratelog import RateLimitedLog
from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.call.budgets import MediaBudget, MediaLimits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_frames_over_the_per_second_cap_are_dropped_and_counted() -> None:
    clock = Clock()
    budget = MediaBudget(MediaLimits(max_frames_per_s=5), MULAW_8K, "t", clock=clock)
    assert [budget.admit_frame(10) for _ in range(7)] == [True] * 5 + [False] * 2
    assert budget.dropped["frame"] == 2
    clock.now += 1.0
    assert budget.admit_frame(10), "a new second has a fresh budget"


def test_byte_and_audio_caps_follow_the_wire_format() -> None:
    clock = Clock()
    budget = MediaBudget(MediaLimits(max_bytes_per_s=100, max_audio_ratio=2.0), PCM16_16K, "t", clock=clock)
    assert budget.admit_frame(100) and not budget.admit_frame(1)
    assert budget.admit_audio(64000)  # 2 s of 16 kHz PCM16
    assert not budget.admit_audio(2)
    assert budget.audio_total == 64000 and budget.dropped["audio"] == 1 and budget.dropped["bytes"] == 1


def test_a_socket_over_budget_for_consecutive_seconds_must_be_closed() -> None:
    clock = Clock()
    budget = MediaBudget(MediaLimits(max_frames_per_s=2, strikes_to_close=3), MULAW_8K, "t", clock=clock)
    for second in range(4):
        for _ in range(5):
            budget.admit_frame(1)
        assert budget.should_close is (second >= 3)
        clock.now += 1.0
    clock.now += 5.0  # a quiet spell forgives
    budget.admit_frame(1)
    assert not budget.should_close


def test_dtmf_is_capped_per_second() -> None:
    budget = MediaBudget(MediaLimits(max_dtmf_per_s=3), MULAW_8K, "t", clock=Clock())
    assert [budget.admit_dtmf() for _ in range(5)] == [True, True, True, False, False]


def test_limits_read_the_environment_and_ignore_garbage() -> None:
    limits = MediaLimits.from_env(
        {"PATTER_MEDIA_MAX_FRAMES_PER_S": "99", "PATTER_MEDIA_MAX_AUDIO_RATIO": "x"}
    )
    assert limits.max_frames_per_s == 99 and limits.max_audio_ratio == 4.0


def test_rate_limited_log_writes_one_line_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    logger = logging.getLogger("getpatter.test.ratelog")
    rl = RateLimitedLog(logger, "junk", interval_s=10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="getpatter.test.ratelog"):
        for _ in range(1000):
            rl("bad frame")
        clock.now += 10.0
        rl("bad frame")
        rl("bad frame")
        rl.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["junk: bad frame", "junk: 1000 occurrence(s) (last: bad frame)", "junk: 1 occurrence(s)"]
    assert rl.count == 1002
