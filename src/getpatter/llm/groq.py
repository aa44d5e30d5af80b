"""Groq chat models through Groq's OpenAI-compatible Chat Completions endpoint.

Groq speaks the OpenAI wire protocol at ``https://api.groq.com/openai/v1`` with a Bearer key, so this is a
thin :class:`~getpatter.llm.openai.OpenAICompatibleLLM` with Groq's defaults. Two Groq specifics are
handled: usage may arrive under ``x_groq.usage`` on the final chunk (the shared chunk folder reads it), and
Groq answers 400 to ``messages[].name``, so that field is dropped from outgoing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

from getpatter.llm.base import Message, ToolSchema
from getpatter.llm.openai import ChatOptions, OpenAICompatibleLLM

GROQ_BASE_URL = "https://api.groq.com/openai/v1"


class GroqLLM(OpenAICompatibleLLM):
    """Groq, streamed. ``api_key`` falls back to ``GROQ_API_KEY``; options as for ``OpenAILLM``."""

    provider_id = "groq"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "llama-3.3-70b-versatile",
        *,
        base_url: str = GROQ_BASE_URL,
        **options: Unpack[ChatOptions],
    ) -> None:
        super().__init__(base_url, api_key, model, api_key_env="GROQ_API_KEY", provider_id="groq", **options)

    def build_request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> dict[str, Any]:
        body = super().build_request(messages, tools)
        body["messages"] = [{k: v for k, v in m.items() if k != "name"} for m in body["messages"]]
        return body


LLM = GroqLLM

__all__ = ["GROQ_BASE_URL", "LLM", "GroqLLM"]
