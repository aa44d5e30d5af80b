"""Per-socket budgets for a carrier media socket: what one socket may make the server do per second.

A carrier sends ~50 frames a second of real-time audio. A socket may send a few times that: frames,
raw bytes, decoded audio and DTMF digits beyond their per-second caps are dropped and counted, and a
socket that stays over budget for ``strikes_to_close`` consecutive seconds is closed (``media_flood``).
Malformed frames are logged through a :class:`RateLimitedLog` (one line per socket per interval, with a
count), so a flood of junk cannot flood the log. Limits come from the environment
(``PATTER_MEDIA_MAX_FRAMES_PER_S``, ``PATTER_MEDIA_MAX_BYTES_PER_S``, ``PATTER_MEDIA_MAX_AUDIO_RATIO``,
``PATTER_MEDIA_MAX_DTMF_PER_S``).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from getpatter._ratelog import RateLimitedLog
from getpatter.audio.format import AudioFormat
from getpatter.settings import parse_positive

log = logging.getLogger("getpatter.call")


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Per-second caps of one media socket (defaults: ~5x what a real carrier sends)."""

    max_frames_per_s: int = 250
    max_bytes_per_s: int = 512 * 1024
    #: Seconds of decoded caller audio accepted per second of wall time.
    max_audio_ratio: float = 4.0
    max_dtmf_per_s: int = 10
    #: Consecutive over-budget seconds before the socket is closed.
    strikes_to_close: int = 5
    #: Malformed-frame log lines: at most one per socket per this many seconds.
    log_interval_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MediaLimits:
        environ: Mapping[str, str] = os.environ if env is None else env
        return cls(
            max_frames_per_s=int(parse_positive(environ.get("PATTER_MEDIA_MAX_FRAMES_PER_S"), 250)),
            max_bytes_per_s=int(parse_positive(environ.get("PATTER_MEDIA_MAX_BYTES_PER_S"), 512 * 1024)),
            max_audio_ratio=parse_positive(environ.get("PATTER_MEDIA_MAX_AUDIO_RATIO"), 4.0),
            max_dtmf_per_s=int(parse_positive(environ.get("PATTER_MEDIA_MAX_DTMF_PER_S"), 10)),
        )


class MediaBudget:
    """The running budget of one socket. Not thread-safe (one socket, one task)."""

    def __init__(
        self,
        limits: MediaLimits,
        wire_format: AudioFormat,
        name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._audio_cap = int(limits.max_audio_ratio * wire_format.sample_rate * wire_format.bytes_per_sample)
        self._window = clock()
        self._frames = self._bytes = self._audio = self._dtmf = 0
        self._window_dropped = False
        self._strikes = 0
        #: Decoded audio bytes let through, in total.
        self.audio_total = 0
        #: Frames dropped over budget, by kind (``frame``, ``bytes``, ``audio``, ``dtmf``).
        self.dropped: Counter[str] = Counter()
        self.malformed = RateLimitedLog(
            log, f"media socket {name}: dropped malformed message(s)", interval_s=limits.log_interval_s
        )
        self._over = RateLimitedLog(
            log, f"media socket {name}: dropped over-budget message(s)", interval_s=limits.log_interval_s
        )

    @property
    def should_close(self) -> bool:
        return self._strikes >= self.limits.strikes_to_close

    def _roll(self) -> None:
        now = self._clock()
        elapsed = now - self._window
        if elapsed < 1.0:
            return
        if self._window_dropped and elapsed < 2.0:
            self._strikes += 1
        else:
            self._strikes = 0
        self._window = now
        self._frames = self._bytes = self._audio = self._dtmf = 0
        self._window_dropped = False

    def _drop(self, kind: str) -> bool:
        self.dropped[kind] += 1
        self._window_dropped = True
        self._over(kind)
        return False

    def admit_frame(self, size: int) -> bool:
        """Count one raw frame of ``size`` bytes; ``False`` = drop it unparsed."""
        self._roll()
        if self._frames >= self.limits.max_frames_per_s:
            return self._drop("frame")
        if self._bytes + size > self.limits.max_bytes_per_s:
            return self._drop("bytes")
        self._frames += 1
        self._bytes += size
        return True

    def admit_audio(self, n_bytes: int) -> bool:
        """Count ``n_bytes`` of decoded audio (in the socket's wire format); ``False`` = drop it."""
        if self._audio + n_bytes > self._audio_cap:
            return self._drop("audio")
        self._audio += n_bytes
        self.audio_total += n_bytes
        return True

    def admit_dtmf(self) -> bool:
        if self._dtmf >= self.limits.max_dtmf_per_s:
            return self._drop("dtmf")
        self._dtmf += 1
        return True

    def close(self) -> None:
        """Report what is still unreported (the socket is closing)."""
        self.malformed.flush()
        self._over.flush()


__all__ = ["MediaBudget", "MediaLimits"]
