"""Namespaced OpenAI engines: ``getpatter.engines.openai.Realtime`` is :class:`OpenAIRealtime`."""

from __future__ import annotations

from getpatter.engines.openai_realtime import OpenAIRealtime, OpenAIRealtimeSession

Realtime = OpenAIRealtime

__all__ = ["OpenAIRealtime", "OpenAIRealtimeSession", "Realtime"]
