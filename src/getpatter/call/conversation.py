"""What the session needs of a conversation, whichever mode runs it (pipeline or speech-to-speech)."""

from __future__ import annotations

from typing import Protocol

from getpatter.call.context import HistoryEntry


class Conversation(Protocol):
    history: list[HistoryEntry]

    @property
    def agent_busy(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def on_audio(self, wire: bytes) -> None: ...

    async def on_dtmf(self, digit: str) -> None: ...
