"""The LLM interface: streamed chat with tool calling, in one provider-neutral event shape.

Messages use the OpenAI chat shape (``{"role", "content", "tool_calls", "tool_call_id"}``) because it
is the lingua franca; providers with another shape convert at their edge. Tools are described as
``{"name", "description", "parameters"}`` (JSON schema).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from getpatter._provider import ProviderAttributes

Message = dict[str, Any]
ToolSchema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A complete tool call: the provider has already joined the streamed argument pieces."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


LLMEvent = TextDelta | ToolCallRequest | Usage


class LLM(ProviderAttributes, abc.ABC):
    """A chat model provider (configuration, shareable across calls)."""

    provider_id: str = ""
    model: str = ""

    @abc.abstractmethod
    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> AsyncIterator[LLMEvent]:
        """Yield text deltas as they arrive, then complete tool calls, then usage.

        Raises AuthenticationError, RateLimitError or PatterConnectionError before the first event when the
        vendor refuses; cancelling the iteration closes the HTTP stream.
        """

    async def close(self) -> None:
        """Release pooled connections."""
