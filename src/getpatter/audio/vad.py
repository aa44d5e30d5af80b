"""Voice activity: the :class:`VAD` interface, the always-available :class:`EnergyVAD`, and the
:class:`VoiceActivity` state machine that turns per-window probabilities into speech start/end events.

All times are **stream time**: milliseconds of audio fed so far, counted from samples, never the wall
clock. That makes the events deterministic and testable to the exact window.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np

from getpatter.audio._types import PCM16_DTYPE, BytesLike, CodeArray, Int16Array
from getpatter.audio.errors import AudioConfigError
from getpatter.audio.g711 import MULAW_SQUARES, mulaw_decode

_FULL_SCALE_SQUARED: Final = 32768.0 * 32768.0


class VAD(abc.ABC):
    """Scores fixed-size windows of PCM16 mono for speech.

    A detector states the ``sample_rate`` it expects (16 kHz, the internal format) and the window it
    analyses (``window_samples``: 320 = 20 ms for :class:`EnergyVAD`, 512 for Silero at 16 kHz).
    :class:`VoiceActivity` always calls :meth:`speech_probability` with exactly that many samples, in
    stream order, so a detector may keep state between windows; :meth:`reset` forgets it. The window is
    a read-only view valid only during the call: copy it to keep samples.

    ``end_of_turn_silence_ms`` is the silence after speech that ends the caller's turn when this detector
    drives :class:`VoiceActivity` (its ``min_silence_ms`` unless given): a detector whose score falls as
    soon as the voice stops can afford a shorter hangover than one that tracks energy.
    """

    end_of_turn_silence_ms: float = 500.0

    @property
    def sample_rate(self) -> int:
        return 16000

    @property
    @abc.abstractmethod
    def window_samples(self) -> int:
        """Samples per analysis window."""

    @abc.abstractmethod
    def speech_probability(self, window: Int16Array) -> float:
        """Probability in [0, 1] that ``window`` (int16, ``window_samples`` long) contains speech."""

    def speech_probability_mulaw(self, codes: CodeArray) -> float:
        """The same for a window of μ-law codes (uint8, ``window_samples`` long, 8 kHz): decoded, then
        scored. A detector that can score the codes directly overrides it (:class:`EnergyVAD` does)."""
        return self.speech_probability(mulaw_decode(codes))

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget all history (new call, or a deliberate restart)."""


class EnergyVAD(VAD):
    """Cheap RMS detector on 20 ms windows with an adaptive noise floor.

    Per window it measures the RMS level ``L`` in dBFS and compares it with a running noise floor ``F``:

    - **Absolute gate**: ``L < min_level_dbfs`` (default -45 dBFS) is never speech. Phone speech sits
      around -35..-15 dBFS once decoded; line hiss and μ-law idle noise around -70..-50 dBFS.
    - **Probability** ramps linearly with the margin ``L - F``: 0 at ``snr_low_db`` (6 dB) and below, 1 at
      ``snr_high_db`` (15 dB) and above, so 0.5 sits at 10.5 dB above the floor.
    - **Floor tracking**: ``F`` drops at once to any quieter window, and rises towards louder windows by
      at most ``floor_rise_db_per_s`` (8 dB/s). Real speech falls back to the line noise between
      syllables and words, which keeps pulling ``F`` down; a steady hum, hiss or tone never does, so ``F``
      climbs to it and it stops counting as speech after about ``(L - F0 - 10.5) / 8`` seconds (e.g. a
      -30 dBFS hum from the start: ~2.4 s). ``F`` never goes below ``initial_floor_dbfs`` (-60 dBFS), so
      a stretch of digital silence cannot make later line noise look like speech for long.
    """

    def __init__(
        self,
        *,
        min_level_dbfs: float = -45.0,
        snr_low_db: float = 6.0,
        snr_high_db: float = 15.0,
        initial_floor_dbfs: float = -60.0,
        floor_rise_db_per_s: float = 8.0,
        window_samples: int | None = None,
        sample_rate: int = 16000,
    ) -> None:
        """``sample_rate``: the PCM16 rate it is fed (8000 runs it on a mu-law carrier's decoded frames,
        with no resampling); ``window_samples`` defaults to 20 ms at that rate."""
        if sample_rate not in (8000, 16000, 24000, 48000):
            raise AudioConfigError(
                f"EnergyVAD sample_rate must be 8000, 16000, 24000 or 48000 (got {sample_rate})."
            )
        self._rate = sample_rate
        if window_samples is None:
            window_samples = sample_rate // 50
        if not snr_high_db > snr_low_db:
            raise AudioConfigError(
                f"EnergyVAD needs snr_high_db > snr_low_db (got {snr_high_db} <= {snr_low_db})."
            )
        if floor_rise_db_per_s <= 0:
            raise AudioConfigError(f"floor_rise_db_per_s must be > 0 (got {floor_rise_db_per_s}).")
        if window_samples < 16:
            raise AudioConfigError(
                f"window_samples must be >= 16 (got {window_samples}); 320 is 20 ms at 16k, 160 at 8k."
            )
        self._min_level = min_level_dbfs
        self._snr_low = snr_low_db
        self._snr_span = snr_high_db - snr_low_db
        self._initial_floor = initial_floor_dbfs
        self._window = window_samples
        self._rise_per_window = floor_rise_db_per_s * window_samples / self.sample_rate
        self._floor = initial_floor_dbfs
        self._last_level = -math.inf

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def window_samples(self) -> int:
        return self._window

    @property
    def noise_floor_dbfs(self) -> float:
        """The current noise-floor estimate."""
        return self._floor

    @property
    def last_level_dbfs(self) -> float:
        """RMS level of the last window scored (``-inf`` before any, or for digital silence)."""
        return self._last_level

    def speech_probability(self, window: Int16Array) -> float:
        if window.size == 0:
            return 0.0
        as_float = window.astype(np.float32)
        return self._score(float(np.dot(as_float, as_float)) / window.size)

    def speech_probability_mulaw(self, codes: CodeArray) -> float:
        # One table lookup and one sum: no decode, no float conversion of the samples.
        if codes.size == 0:
            return 0.0
        return self._score(float(MULAW_SQUARES.take(codes).sum()) / codes.size)

    def _score(self, mean_square: float) -> float:
        level = 10.0 * math.log10(mean_square / _FULL_SCALE_SQUARED) if mean_square > 0.0 else -math.inf
        self._last_level = level
        # Score against the floor as it was before this window, then let the floor follow.
        margin = level - self._floor
        if level < self._floor:
            self._floor = max(level, self._initial_floor)
        else:
            self._floor = min(level, self._floor + self._rise_per_window)
        if level < self._min_level:
            return 0.0
        return min(1.0, max(0.0, (margin - self._snr_low) / self._snr_span))

    def reset(self) -> None:
        self._floor = self._initial_floor
        self._last_level = -math.inf


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """Speech began at ``onset_ms``: the start of the first voiced window of the run that qualified."""

    onset_ms: float


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    """Speech ended at ``end_ms`` (end of the last voiced window); ``duration_ms = end_ms - onset_ms``.

    It is reported ``min_silence_ms`` later than ``end_ms``, once the silence has lasted that long.
    """

    end_ms: float
    duration_ms: float


VadEvent: TypeAlias = SpeechStart | SpeechEnd


class VoiceActivity:
    """Speech start/end events from any :class:`VAD`, fed PCM16 LE at ``vad.sample_rate`` in any chunks.

    A window is *voiced* when its probability is ``>= threshold``. Speech starts after ``min_speech_ms``
    of consecutive voiced windows (a shorter blip resets), and ends after ``min_silence_ms`` of
    consecutive unvoiced windows (the end-of-turn hangover; a voiced window in between cancels it);
    ``min_silence_ms`` defaults to the detector's ``end_of_turn_silence_ms`` (500 ms for :class:`EnergyVAD`).
    """

    def __init__(
        self,
        vad: VAD | None = None,
        *,
        threshold: float = 0.5,
        min_speech_ms: float = 60.0,
        min_silence_ms: float | None = None,
    ) -> None:
        self._vad: VAD = vad if vad is not None else EnergyVAD()
        if min_silence_ms is None:
            min_silence_ms = self._vad.end_of_turn_silence_ms
        if not 0.0 <= threshold <= 1.0:
            raise AudioConfigError(f"threshold must be within [0, 1] (got {threshold}); 0.5 is typical.")
        if min_speech_ms < 0:
            raise AudioConfigError(f"min_speech_ms must be >= 0 (got {min_speech_ms}).")
        if min_silence_ms < 0:
            raise AudioConfigError(f"min_silence_ms must be >= 0 (got {min_silence_ms}).")
        self._threshold = threshold
        self._min_speech_ms = min_speech_ms
        self._min_silence_ms = min_silence_ms
        self._window = self._vad.window_samples
        self._window_bytes = self._window * 2
        self._rate = self._vad.sample_rate
        self._buf = bytearray()
        self._windows_done = 0
        self._speaking = False
        self._run_start: int | None = None  # first window index of the current voiced run (not speaking)
        self._onset_window = 0
        self._last_voiced_window = 0  # index of the last voiced window while speaking
        self._silent_windows = 0

    @property
    def vad(self) -> VAD:
        return self._vad

    @property
    def speaking(self) -> bool:
        """True between a reported :class:`SpeechStart` and its :class:`SpeechEnd`."""
        return self._speaking

    @property
    def last_voiced_ms(self) -> float:
        """End of the most recent voiced window of the current speech (stream ms); 0 when not speaking.

        ``stream_ms - last_voiced_ms`` is how long the caller has been quiet inside the end-of-turn hangover.
        """
        return self._ms(self._last_voiced_window + 1) if self._speaking else 0.0

    @property
    def onset_ms(self) -> float:
        """Start of the current speech (stream ms); meaningful only while ``speaking``."""
        return self._ms(self._onset_window)

    @property
    def stream_ms(self) -> float:
        """Stream time analysed so far (whole windows only)."""
        return self._ms(self._windows_done)

    def _ms(self, windows: int) -> float:
        return windows * self._window * 1000.0 / self._rate

    def feed(self, pcm16: BytesLike) -> list[VadEvent]:
        """Analyse every whole window now available; return the events they caused, oldest first."""
        whole, count = self._whole_windows(pcm16, self._window_bytes)
        if count == 0:
            return []
        samples = np.frombuffer(whole, dtype=PCM16_DTYPE, count=count * self._window)
        events: list[VadEvent] = []
        for i in range(count):
            window = samples[i * self._window : (i + 1) * self._window]
            self._step(self._vad.speech_probability(window) >= self._threshold, events)
        return events

    def feed_mulaw(self, codes: BytesLike) -> list[VadEvent]:
        """:meth:`feed` for μ-law 8 kHz input (the detector's ``sample_rate`` must be 8000): each window
        of codes is scored by ``speech_probability_mulaw`` (for :class:`EnergyVAD`, without decoding).
        Feed a ``VoiceActivity`` one way only, PCM16 or μ-law, for the whole stream."""
        if self._rate != 8000:
            raise AudioConfigError(
                f"feed_mulaw needs a detector at 8000 Hz (this one runs at {self._rate}); "
                "decode the audio and use feed(), or build the detector with sample_rate=8000."
            )
        window = self._window
        whole, count = self._whole_windows(codes, window)
        if count == 0:
            return []
        samples = np.frombuffer(whole, dtype=np.uint8, count=count * window)
        events: list[VadEvent] = []
        score = self._vad.speech_probability_mulaw
        for i in range(count):
            self._step(score(samples[i * window : (i + 1) * window]) >= self._threshold, events)
        return events

    def _whole_windows(self, data: BytesLike, window_bytes: int) -> tuple[BytesLike, int]:
        """The whole windows now available (buffered input first) and how many; keeps the remainder."""
        if self._buf:
            self._buf += data
            count = len(self._buf) // window_bytes
            if count == 0:
                return b"", 0
            whole = bytes(self._buf[: count * window_bytes])
            del self._buf[: count * window_bytes]
            return whole, count
        count = len(data) // window_bytes
        if len(data) > count * window_bytes:
            self._buf += data[count * window_bytes :]
        return data, count

    def _step(self, voiced: bool, events: list[VadEvent]) -> None:
        index = self._windows_done
        self._windows_done += 1
        if self._speaking:
            if voiced:
                self._last_voiced_window = index
                self._silent_windows = 0
                return
            self._silent_windows += 1
            if self._ms(self._silent_windows) >= self._min_silence_ms:
                events.append(self._end())
            return
        if not voiced:
            self._run_start = None
            return
        if self._run_start is None:
            self._run_start = index
        if self._ms(index + 1 - self._run_start) >= self._min_speech_ms:
            self._speaking = True
            self._onset_window = self._run_start
            self._last_voiced_window = index
            self._silent_windows = 0
            self._run_start = None
            events.append(SpeechStart(onset_ms=self._ms(self._onset_window)))

    def _end(self) -> SpeechEnd:
        self._speaking = False
        self._silent_windows = 0
        end_ms = self._ms(self._last_voiced_window + 1)
        return SpeechEnd(end_ms=end_ms, duration_ms=end_ms - self._ms(self._onset_window))

    def finish(self) -> list[VadEvent]:
        """End of stream: report the :class:`SpeechEnd` still pending, if speaking; drop partial input."""
        self._buf.clear()
        self._run_start = None
        return [self._end()] if self._speaking else []

    def reset(self) -> None:
        """Forget everything, including the detector's state; stream time restarts at 0."""
        self._vad.reset()
        self._buf.clear()
        self._windows_done = 0
        self._speaking = False
        self._run_start = None
        self._onset_window = 0
        self._last_voiced_window = 0
        self._silent_windows = 0
