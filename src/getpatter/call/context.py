"""Per-call identity and the control surface handed to ``on_message`` handlers (API.md #28)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from getpatter.call.events import Direction

log = logging.getLogger("getpatter.call")


@dataclass(slots=True)
class CallContext:
    call_id: str
    caller: str
    callee: str
    direction: Direction
    carrier: str
    custom_params: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    started_mono: float = field(default_factory=time.monotonic)
    #: Set by the metrics observer when the call ends (a ``CallMetrics``); handed to ``on_call_end``.
    metrics: Any = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    role: str
    text: str
    timestamp: float

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "timestamp": self.timestamp}


class CallControl:
    """What a custom ``on_message`` handler may do to the live call.

    ``hangup`` waits for the agent's current utterance to finish playing, so a goodbye is heard.
    """

    def __init__(
        self,
        ctx: CallContext,
        *,
        hangup: Callable[[], Awaitable[None]],
        transfer: Callable[[str], Awaitable[None]],
    ) -> None:
        self._ctx = ctx
        self._hangup = hangup
        self._transfer = transfer
        self.is_hung_up = False
        self.is_transferred = False

    @property
    def call_id(self) -> str:
        return self._ctx.call_id

    @property
    def caller(self) -> str:
        return self._ctx.caller

    @property
    def callee(self) -> str:
        return self._ctx.callee

    @property
    def telephony_provider(self) -> str:
        return self._ctx.carrier

    @property
    def ended(self) -> bool:
        return self.is_hung_up or self.is_transferred

    async def hangup(self) -> None:
        if self.ended:
            return
        self.is_hung_up = True
        await self._hangup()

    async def transfer(self, number: str) -> None:
        """Transfer the caller to ``number`` (E.164). Raises :class:`PatterConfigError` for a malformed
        number and the carrier's :class:`PatterError` when it refuses; ``is_transferred`` only becomes
        True once the carrier accepted, so the conversation can go on after a failure."""
        if self.ended:
            return
        await self._transfer(number)
        self.is_transferred = True
