"""Namespaced access to the ElevenLabs engine: ``from getpatter.engines import elevenlabs``, then
``elevenlabs.ConvAI(...)``, which is :class:`~getpatter.engines.elevenlabs_convai.ElevenLabsConvAI`
(API.md A.1 row 7).
"""

from __future__ import annotations

from getpatter.engines.elevenlabs_convai import ElevenLabsConvAI, ElevenLabsConvAISession

ConvAI = ElevenLabsConvAI

__all__ = ["ConvAI", "ElevenLabsConvAI", "ElevenLabsConvAISession"]
