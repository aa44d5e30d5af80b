"""What the streaming-STT fakes share: the key they accept, the script they transcribe from, the faults a
test injects and the record of what they saw."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Generic, TypedDict, TypeVar, Unpack

C = TypeVar("C")


class STTFaults(TypedDict, total=False):
    """The fault knobs every streaming-STT fake takes (see :class:`ScriptedSTTFake`)."""

    reject_status: int | None
    drop_after_seconds: float | None
    error_after_seconds: float | None
    progress_ms: int


class ScriptedSTTFake(Generic[C]):
    """Each voiced segment is transcribed as the next scripted utterance (``""`` once the script runs
    out); the script is shared across connections, so a reconnect continues it. Faults: ``reject_status``
    refuses the handshake, ``drop_after_seconds`` / ``error_after_seconds`` of audio end a session
    abruptly or with the vendor's error. ``connections`` (one ``C`` each) and ``refusals`` record it all."""

    def __init__(
        self,
        api_key: str,
        utterances: Iterable[str] = (),
        **faults: Unpack[STTFaults],
    ) -> None:
        self.api_key = api_key
        self.utterances = list(utterances)
        self.reject_status = faults.get("reject_status")
        self.drop_after_seconds = faults.get("drop_after_seconds")
        self.error_after_seconds = faults.get("error_after_seconds")
        self.progress_ms = faults.get("progress_ms", 100)
        self.connections: list[C] = []
        self.refusals: list[tuple[int, str]] = []
        self._script = itertools.count()

    def next_utterance(self) -> str:
        """The next scripted text (``""`` past the end of the script)."""
        i = next(self._script)
        return self.utterances[i] if i < len(self.utterances) else ""


__all__ = ["STTFaults", "ScriptedSTTFake"]
