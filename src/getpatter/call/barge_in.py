"""When caller speech interrupts the agent (pipeline mode): a pure decision on the VAD's audio clock.

The caller must be talking, live and unbroken, for ``threshold_ms`` since the agent started answering.
Speech that began before the answer (the tail of the turn being answered, or the VAD's end-of-turn
hangover) only counts from the answer's start; a gap longer than :data:`BARGE_IN_GAP_MS` means the
caller has stopped; one stretch of speech interrupts at most once.
"""

from __future__ import annotations

from typing import Protocol

#: Unvoiced time that still counts as one unbroken stretch of caller speech for barge-in.
BARGE_IN_GAP_MS = 60.0


class VoiceState(Protocol):
    """What the decision reads of :class:`~getpatter.audio.vad.VoiceActivity` (milliseconds of audio)."""

    @property
    def speaking(self) -> bool: ...
    @property
    def stream_ms(self) -> float: ...
    @property
    def last_voiced_ms(self) -> float: ...
    @property
    def onset_ms(self) -> float: ...


def barge_in_onset(
    vad: VoiceState, *, threshold_ms: float, busy_since_ms: float, interrupted_onset: float | None
) -> float | None:
    """The onset of the speech that interrupts the agent now, or None to let it go on.

    ``busy_since_ms``: where the answer started on the same clock; ``interrupted_onset``: the onset
    that already interrupted (returned by an earlier call), so one stretch of speech interrupts once.
    Only call it while the agent is answering.
    """
    if threshold_ms <= 0 or not vad.speaking:
        return None
    if vad.stream_ms - vad.last_voiced_ms > BARGE_IN_GAP_MS:
        return None  # in the hangover: the caller has stopped
    onset = max(vad.onset_ms, busy_since_ms)
    if onset == interrupted_onset or vad.last_voiced_ms - onset < threshold_ms:
        return None
    return onset
