"""OpenAI Whisper (``whisper-1``) as a batch recogniser: one multipart upload per caller utterance.

Whisper has no streaming mode, so the stream buffers PCM16 16 kHz and transcribes when the pipeline's VAD
calls ``finalize()`` (``needs_vad_end_of_turn``). Known filler hallucinations ("Thank you.", "Thanks for
watching!", "you" on near-silent audio) and a repeat of the previous final within ``dedupe_window_s`` are
dropped (API.md A.8). Works with any OpenAI-compatible transcription endpoint through ``base_url`` (e.g.
Groq's ``https://api.groq.com/openai/v1`` with ``model="whisper-large-v3-turbo"``). Shared logic:
:mod:`getpatter.stt._batch`.
"""

from __future__ import annotations

from typing import Final

from getpatter.stt._batch import BatchSTTStream, BatchTranscriptionSTT

__all__ = ["STT", "BatchSTTStream", "WhisperSTT"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"


class WhisperSTT(BatchTranscriptionSTT):
    """``provider_id="whisper"`` (billed per uploaded audio minute); key from ``OPENAI_API_KEY``."""

    provider_id = "whisper"
    vendor = "OpenAI Whisper"
    env_var = "OPENAI_API_KEY"
    response_formats = ("json", "text", "verbose_json")

    def __init__(
        self,
        api_key: str | None = None,
        language: str | None = "en",
        model: str = "whisper-1",
        *,
        base_url: str = DEFAULT_BASE_URL,
        response_format: str = "json",
        prompt: str | None = None,
        temperature: float | None = None,
        timeout_s: float = 30.0,
        drop_hallucinations: bool = True,
        dedupe_window_s: float = 0.5,
        max_utterance_s: float = 120.0,
    ) -> None:
        """``dedupe_window_s``: a final equal to the previous one within this many seconds is dropped."""
        super().__init__(
            api_key,
            language=language,
            model=model,
            response_format=response_format,
            base_url=base_url,
            prompt=prompt,
            temperature=temperature,
            timeout_s=timeout_s,
            drop_hallucinations=drop_hallucinations,
            dedupe_window_s=dedupe_window_s,
            max_utterance_s=max_utterance_s,
        )


STT = WhisperSTT
