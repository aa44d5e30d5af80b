"""Text transforms applied to LLM output before it reaches TTS (pipeline mode, API.md A.1 #35).

The pipeline calls these per sentence chunk, so every filter is written to be safe on a fragment: a code
fence line, a table row or half of a bold span arriving alone is handled the same as in a whole document.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Final

__all__ = ["TextTransform", "apply_transforms", "filter_emoji", "filter_for_tts", "filter_markdown"]

logger = logging.getLogger(__name__)

TextTransform = Callable[[str], str]
"""A synchronous ``str -> str`` function; see :func:`apply_transforms`."""

# --- markdown -------------------------------------------------------------------------------------------

_FENCE_LINE: Final = re.compile(r"^[ \t]*(?:```|~~~)[^\n]*(?:\n|$)", re.MULTILINE)
_TABLE_RULE_LINE: Final = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*(?:\n|$)", re.M
)
_HORIZONTAL_RULE: Final = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*(?:\n|$)", re.MULTILINE)
_HEADING: Final = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.MULTILINE)
_BLOCKQUOTE: Final = re.compile(r"^[ \t]*(?:>[ \t]?)+", re.MULTILINE)
_BULLET: Final = re.compile(r"^[ \t]*[-*+•][ \t]+", re.MULTILINE)
_IMAGE: Final = re.compile(r"!\[[^\]\n]*\]\([^)\n]*\)")
_LINK: Final = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")
_AUTOLINK: Final = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_INLINE_CODE: Final = re.compile(r"(?<!`)(`+)(?!`)([^\n]+?)(?<!`)\1(?!`)")
_BOLD_STAR: Final = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_BOLD_UNDERSCORE: Final = re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_STRIKE: Final = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_EM_STAR: Final = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]*?[^\s*])?\*(?![\w*])")
_EM_UNDERSCORE: Final = re.compile(r"(?<!\w)_(?=[^\s_])([^_\n]*?[^\s_])?_(?!\w)")
_LEFTOVER_EMPHASIS: Final = re.compile(r"\*{2,}|~~|(?<!\w)__+|__+(?!\w)")
_TABLE_EDGE_PIPE: Final = re.compile(r"^[ \t]*\|[ \t]*|[ \t]*\|[ \t]*$", re.MULTILINE)
_TABLE_INNER_PIPE: Final = re.compile(r"[ \t]*\|[ \t]*")


def _em_sub(m: re.Match[str]) -> str:
    return m.group(1) or ""


def filter_markdown(text: str) -> str:
    """Remove markdown syntax so TTS does not read symbols aloud; the words themselves are kept.

    Bold/italic/strike markers, inline code backticks, heading hashes, blockquote ``>``, list bullets
    (``-``, ``*``, ``+``, ``•``; numbered items are kept since they read naturally), fence lines (the code
    inside is kept), horizontal rules and table separator rows are removed; ``[text](url)`` becomes
    ``text``; images are dropped (nothing useful to say on a phone call); table cells are joined with
    ``", "``. Identifiers such as ``snake_case_name`` and arithmetic such as ``2 * 3`` are left alone.
    """
    if not text:
        return text
    out = _FENCE_LINE.sub("", text)
    if "|" in out:
        out = _TABLE_RULE_LINE.sub("", out)
    out = _HORIZONTAL_RULE.sub("", out)
    out = _HEADING.sub("", out)
    out = _BLOCKQUOTE.sub("", out)
    out = _BULLET.sub("", out)
    if "](" in out:
        out = _IMAGE.sub("", out)
        out = _LINK.sub(r"\1", out)
    out = _AUTOLINK.sub(r"\1", out)
    if "`" in out:
        out = _INLINE_CODE.sub(r"\2", out)
    out = _BOLD_STAR.sub(r"\1", out)
    out = _BOLD_UNDERSCORE.sub(r"\1", out)
    out = _STRIKE.sub(r"\1", out)
    out = _EM_STAR.sub(_em_sub, out)
    out = _EM_UNDERSCORE.sub(_em_sub, out)
    out = _LEFTOVER_EMPHASIS.sub("", out)
    if "|" in out:
        out = _TABLE_EDGE_PIPE.sub("", out)
        out = _TABLE_INNER_PIPE.sub(", ", out)
    return out


# --- emoji ----------------------------------------------------------------------------------------------

# Pictographic code points. Text-style symbols that TTS can pronounce (©, ®, ™, arrows, digits) are kept;
# keycap sequences therefore lose only their decoration ("1️⃣" -> "1").
_PICTO: Final = (
    "\U0001f000-\U0001faff"  # mahjong .. symbols & pictographs extended-A (incl. flags, skin tones)
    "\u2600-\u27bf"  # misc symbols, dingbats
    "\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55"
    "\u231a\u231b\u2328\u23cf\u23e9-\u23f3\u23f8-\u23fa"
    "\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe"
    "\u2934\u2935\u3030\u303d\u3297\u3299"
)
_EMOJI_DECOR: Final = "\ufe0e\ufe0f\u20e3\U000e0020-\U000e007f"
_EMOJI_SEQ: Final = rf"[{_PICTO}][{_EMOJI_DECOR}]*(?:\u200d[{_PICTO}][{_EMOJI_DECOR}]*)*"
_EMOJI_RUN: Final = re.compile(rf"([ \t]*)(?:{_EMOJI_SEQ}|[{_EMOJI_DECOR}])+([ \t]*)")
_NO_SPACE_BEFORE: Final = frozenset(".,!?;:)]}»”’…")


def filter_emoji(text: str) -> str:
    """Remove emoji (incl. ZWJ sequences, skin tones, flags, variation selectors).

    A zero-width joiner is only removed inside an emoji sequence, so Indic scripts keep theirs. Spacing is
    repaired where an emoji was: ``"Great 👍 job"`` -> ``"Great job"``, ``"Done 🎉."`` -> ``"Done."``; other
    whitespace is untouched.
    """
    if not text or text.isascii():
        return text

    def repl(m: re.Match[str]) -> str:
        start, end = m.span()
        if start == 0 or end == len(text) or text[end] in _NO_SPACE_BEFORE:
            return ""
        return " " if (m.group(1) or m.group(2)) else ""

    return _EMOJI_RUN.sub(repl, text)


# --- combined -------------------------------------------------------------------------------------------

_WHITESPACE: Final = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT: Final = re.compile(r" +([.,!?;:…])")


def filter_for_tts(text: str) -> str:
    """:func:`filter_markdown` + :func:`filter_emoji`, then collapse whitespace (newlines included) to
    single spaces, drop spaces left before punctuation and strip the ends."""
    out = filter_emoji(filter_markdown(text))
    out = _WHITESPACE.sub(" ", out)
    out = _SPACE_BEFORE_PUNCT.sub(r"\1", out)
    return out.strip()


# --- user transforms ------------------------------------------------------------------------------------


def _transform_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return name if isinstance(name, str) else repr(fn)


def apply_transforms(text: str, transforms: Iterable[TextTransform] | None) -> str:
    """Run ``transforms`` in order, each on the previous one's output.

    Fail-open: a transform that raises, or returns something other than a ``str``, is logged with its
    name and skipped (the text it was given passes on unchanged), so one buggy transform cannot mute the
    agent.
    """
    if not transforms:
        return text
    for fn in transforms:
        try:
            result = fn(text)
        except Exception:
            logger.exception("text transform %s raised; skipping it", _transform_name(fn))
            continue
        if not isinstance(result, str):
            logger.error(
                "text transform %s returned %s instead of str; skipping it",
                _transform_name(fn),
                type(result).__name__,
            )
            continue
        text = result
    return text
