"""Pure text processing for the pipeline: sentence chunking, TTS text filters, prompt variables.

Nothing here does I/O or imports other getpatter packages, so it is cheap to import and easy to test.
"""

from getpatter.text.chunker import DEFAULT_MIN_CHARS, FIRST_FLUSH_MIN_CHARS, SentenceChunker
from getpatter.text.transforms import (
    TextTransform,
    apply_transforms,
    filter_emoji,
    filter_for_tts,
    filter_markdown,
)
from getpatter.text.variables import MAX_VARIABLE_CHARS, sanitize_variable, substitute_variables

__all__ = [
    "DEFAULT_MIN_CHARS",
    "FIRST_FLUSH_MIN_CHARS",
    "MAX_VARIABLE_CHARS",
    "SentenceChunker",
    "TextTransform",
    "apply_transforms",
    "filter_emoji",
    "filter_for_tts",
    "filter_markdown",
    "sanitize_variable",
    "substitute_variables",
]
