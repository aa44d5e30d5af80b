"""One turn's clock: typed timestamps owned by the :class:`Turn` they belong to.

The pipeline, the reply source and the realtime conversation stamp stages on the current turn's
:class:`TurnClock` as attributes (a misspelt stage is an ``AttributeError`` and a type error, never a
silently dropped timing); the finished turn is published as a frozen :class:`TurnTimings`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from getpatter.call.events import TurnTimings


@dataclass(slots=True)
class TurnClock:
    """Monotonic marks (seconds) of one turn, set as they happen; same stages as :class:`TurnTimings`."""

    speech_started: float | None = None
    speech_ended: float | None = None
    transcript_final: float | None = None
    llm_dispatched: float | None = None
    llm_first_token: float | None = None
    llm_done: float | None = None
    first_sentence: float | None = None
    tts_first_byte: float | None = None
    first_audio_sent: float | None = None
    last_audio_sent: float | None = None
    barge_in_detected: float | None = None
    playback_stopped: float | None = None

    def timings(self) -> TurnTimings:
        """The frozen copy published with ``TurnCompleted``."""
        return TurnTimings(**dataclasses.asdict(self))


def first(current: float | None, now: float | None) -> float | None:
    """Keep a stage's first stamp: ``clock.x = first(clock.x, now)``."""
    return now if current is None else current


@dataclass(slots=True)
class Turn:
    """One exchange: what the caller said (empty for the greeting) and its clock."""

    user_text: str = ""
    clock: TurnClock = field(default_factory=TurnClock)
