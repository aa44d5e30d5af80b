"""OpenAI ``gpt-4o-transcribe`` / ``gpt-4o-mini-transcribe`` as a batch recogniser.

Same wire and stream contract as :mod:`getpatter.stt.whisper` (multipart ``POST /audio/transcriptions``
per VAD-delimited utterance, one final end-of-turn Transcript each; see :mod:`getpatter.stt._batch`).
The gpt-4o models only answer ``json`` or ``text``, so other formats are refused at construction.
``language=None`` (the default) lets the model detect the language. Hallucination filtering is on too:
these models drift less than whisper-1 on silence, but silent utterances are still never uploaded.
"""

from __future__ import annotations

from typing import Final

from getpatter.errors import PatterConfigError
from getpatter.stt._batch import BatchSTTStream, BatchTranscriptionSTT

__all__ = ["STT", "BatchSTTStream", "OpenAITranscribeSTT"]

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
MODELS: Final = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")


class OpenAITranscribeSTT(BatchTranscriptionSTT):
    """``provider_id="openai_transcribe"``; key from ``OPENAI_API_KEY``."""

    provider_id = "openai_transcribe"
    vendor = "OpenAI Transcribe"
    env_var = "OPENAI_API_KEY"
    response_formats = ("json", "text")

    def __init__(
        self,
        api_key: str | None = None,
        language: str | None = None,
        model: str = "gpt-4o-transcribe",
        response_format: str = "json",
        *,
        base_url: str = DEFAULT_BASE_URL,
        prompt: str | None = None,
        temperature: float | None = None,
        timeout_s: float = 30.0,
        drop_hallucinations: bool = True,
        dedupe_window_s: float = 0.5,
        max_utterance_s: float = 120.0,
        allow_unlisted_model: bool = False,
    ) -> None:
        if model.startswith("whisper"):
            raise PatterConfigError(
                f"OpenAITranscribeSTT model={model!r} is a Whisper model; use WhisperSTT for it "
                f"(this class is for {', '.join(MODELS)})."
            )
        if model not in MODELS and not allow_unlisted_model:
            raise PatterConfigError(
                f"OpenAITranscribeSTT model={model!r} is not a documented transcription model. Use one of "
                f"{', '.join(MODELS)}, or pass allow_unlisted_model=True for a model OpenAI added after this "
                "release."
            )
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


STT = OpenAITranscribeSTT
