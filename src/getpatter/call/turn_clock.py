"""One turn and its clock: the typed timestamps of one exchange, owned by the :class:`Turn`.

The pipeline, the reply source and the realtime conversation stamp the current turn's stages by
replacing its frozen :class:`~getpatter.call.events.TurnTimings` (``turn.timings = replace(turn.timings,
llm_done=now)``): a misspelt stage is a type error (mypy checks ``replace``) and a ``TypeError`` at run
time, never a silently dropped timing. The finished turn publishes ``turn.timings`` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from getpatter.call.events import TurnTimings


def first(current: float | None, now: float | None) -> float | None:
    """Keep a stage's first stamp: ``replace(t, x=first(t.x, now))``."""
    return now if current is None else current


@dataclass(slots=True)
class Turn:
    """One exchange: what the caller said (empty for the greeting) and when each stage happened."""

    user_text: str = ""
    timings: TurnTimings = field(default_factory=TurnTimings)
