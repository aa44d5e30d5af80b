"""Streaming sentence chunker: LLM token deltas in, speakable sentences out.

Contract
--------
* ``push(delta)`` returns the sentences that became *certain* with this delta; ``flush()`` returns the rest
  at the end of a response; ``reset()`` drops pending text (barge-in) without returning it.
* Every boundary is decided only once enough right-hand context has arrived to make the decision final.
  Hence the output depends only on the concatenated text, never on how it was split into deltas, and
  ``"".join(outputs)`` equals the input modulo whitespace (chunks are whitespace-stripped, nothing else
  is dropped or added).

Boundaries
----------
* **Weak terminators** ``. ! ? …`` (and runs of them, e.g. ``?!`` or ``...``), optionally followed by
  closing quotes/brackets/markdown emphasis, end a sentence only when followed by whitespace (or the end of
  the response). This alone keeps decimals (``3.14``, ``$4.50``), times (``10.30``), URLs, e-mail
  addresses and file names whole.
* For ``.``-family runs (``.``, ``...``, ``…``) there is no boundary when the next word starts lowercase
  (``e.g. this``, ``well... maybe``). For a single ``.`` there is no boundary after a known abbreviation
  (``Mr. Dr. St. vs. etc.`` ..., case-insensitive), a dotted run of single letters (``U.S.``, ``a.m.``,
  ``J.R.R.``), a single capital initial (``J. R. R. Tolkien``) or a numbered-list marker (``1.`` of at most
  three digits at the start of a line or right after a terminator/colon). These rules err towards merging:
  a missed boundary only costs latency, a wrong one breaks prosody.
* **Strong terminators** that need no following space: CJK ``。！？`` (plus halfwidth ``｡``), Devanagari
  danda ``।`` and double danda ``॥``, Arabic question mark ``؟`` and Urdu full stop ``۔``.
* A line break ends a chunk (LLM lists and headings rarely carry terminators).
* Chunks shorter than ``min_chars`` (after stripping) are merged into the next one; the tail is always
  released by ``flush()``.
* ``aggressive_first_flush``: until the first chunk of a response is out, a clause boundary also counts
  once the chunk is at least ``FIRST_FLUSH_MIN_CHARS`` long: ``, ; : –`` followed by whitespace, an em dash
  ``—`` (spaced or not) and fullwidth ``，；：``. Disabled for Italian (``language`` starting with ``it``),
  where early clause cuts produce unnatural prosody.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DEFAULT_MIN_CHARS", "FIRST_FLUSH_MIN_CHARS", "SentenceChunker"]

DEFAULT_MIN_CHARS: Final = 6
FIRST_FLUSH_MIN_CHARS: Final = 40

_WEAK: Final = ".!?…"
_STRONG: Final = "。！？｡।॥؟۔"
_TERMINATORS: Final = _WEAK + _STRONG
_CLOSERS: Final = "\"'”’»›)]}」』）】〉》*_"
_CLAUSE_NEEDS_SPACE: Final = ",;:–"
_CLAUSE_FULLWIDTH: Final = "，；："
_EM_DASH: Final = "—"
_LIST_MARKER_PREDECESSORS: Final = "\n:" + _TERMINATORS

_SENTENCE_RE: Final = re.compile("[" + re.escape(_TERMINATORS) + "\n]")
_FIRST_RE: Final = re.compile(
    "[" + re.escape(_TERMINATORS + _CLAUSE_NEEDS_SPACE + _CLAUSE_FULLWIDTH + _EM_DASH) + "\n]"
)
_DOTTED_LETTERS_RE: Final = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")

# Lowercase, without the final dot. Words that often end a real sentence ("no", "am", "us") are excluded.
_ABBREVIATIONS: Final = frozenset(
    {
        "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "ft", "ave", "blvd", "rd", "vs",
        "etc", "approx", "dept", "est", "fig", "inc", "ltd", "co", "corp", "gen", "gov", "sen", "rep",
        "lt", "col", "capt", "sgt", "rev", "hon", "cf", "al", "ca", "ph.d", "jan", "feb", "mar", "apr",
        "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "tel", "ext", "nr", "bzw", "usw", "ggf",
        "sig", "dott", "sra", "sras", "srta", "mme", "mlle",
    }
)  # fmt: skip

# Decision kinds returned by SentenceChunker._decide.
_WAIT: Final = 0  # not enough right context yet
_SKIP: Final = 1  # definitely not a boundary
_SPLIT: Final = 2  # sentence boundary
_CLAUSE: Final = 3  # clause boundary (first-flush only)


class SentenceChunker:
    """Incremental sentence splitter for one response at a time (see the module docstring)."""

    __slots__ = ("_buf", "_emitted", "_first_flush", "_language", "_min_chars", "_pos")

    def __init__(
        self, language: str = "en", aggressive_first_flush: bool = False, min_chars: int = DEFAULT_MIN_CHARS
    ) -> None:
        if not isinstance(language, str):
            raise TypeError(f"language must be a str, got {type(language).__name__}")
        if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 0:
            raise ValueError(f"min_chars must be an int >= 0, got {min_chars!r}")
        self._language = language
        self._min_chars = min_chars
        self._first_flush = bool(aggressive_first_flush) and not language.lower().startswith("it")
        self._buf = ""
        self._pos = 0  # everything before this index in _buf has been decided
        self._emitted = False  # has this response released a chunk yet?

    @property
    def language(self) -> str:
        return self._language

    @property
    def min_chars(self) -> int:
        return self._min_chars

    @property
    def first_flush_enabled(self) -> bool:
        """Whether aggressive first flush is in effect (requested and not disabled by the language)."""
        return self._first_flush

    @property
    def pending(self) -> str:
        """Text received but not yet released."""
        return self._buf

    def push(self, delta: str) -> list[str]:
        """Feed one LLM text delta; return the chunks that are now complete (often none)."""
        if not delta:
            return []
        self._buf += delta
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of response: release everything still pending and get ready for the next response."""
        out = self._drain(final=True)
        rest = self._buf.strip()
        if rest:
            out.append(rest)
        self.reset()
        return out

    def reset(self) -> None:
        """Discard pending text (e.g. on barge-in) and start a fresh response."""
        self._buf = ""
        self._pos = 0
        self._emitted = False

    def _drain(self, final: bool) -> list[str]:
        out: list[str] = []
        buf = self._buf
        pos = self._pos
        min_chars = self._min_chars
        while True:
            regex = _FIRST_RE if self._first_flush and not self._emitted else _SENTENCE_RE
            m = regex.search(buf, pos)
            if m is None:
                pos = len(buf)
                break
            kind, end = self._decide(buf, m.start(), final)
            if kind == _WAIT:
                pos = m.start()
                break
            if kind == _SKIP:
                pos = end
                continue
            segment = buf[:end].strip()
            need = min_chars if kind == _SPLIT else max(min_chars, FIRST_FLUSH_MIN_CHARS)
            if not segment:
                buf, pos = buf[end:], 0
            elif len(segment) >= need:
                out.append(segment)
                self._emitted = True
                buf, pos = buf[end:], 0
            else:
                pos = end  # too short: merge with what follows
        self._buf = buf
        self._pos = pos
        return out

    def _decide(self, buf: str, i: int, final: bool) -> tuple[int, int]:
        """Classify the candidate character at ``buf[i]``; returns (kind, end-or-resume index)."""
        n = len(buf)
        c = buf[i]
        if c == "\n":
            return _SPLIT, i + 1
        if c not in _TERMINATORS:
            return self._decide_clause(buf, i, final)

        j = i
        strong = False
        while j < n and buf[j] in _TERMINATORS:
            strong = strong or buf[j] in _STRONG
            j += 1
        k = j
        while k < n and buf[k] in _CLOSERS:
            k += 1
        if k == n and not final:
            return _WAIT, i
        if strong:
            return _SPLIT, k
        if k < n and not buf[k].isspace():
            return _SKIP, j
        run = buf[i:j]
        if "!" in run or "?" in run:
            return _SPLIT, k
        if j - i == 1 and self._dot_is_not_terminal(buf, i):
            return _SKIP, j
        m = k
        while m < n and buf[m].isspace():
            m += 1
        if m == n:
            return (_SPLIT, k) if final else (_WAIT, i)
        if buf[m].islower():
            return _SKIP, j
        return _SPLIT, k

    @staticmethod
    def _decide_clause(buf: str, i: int, final: bool) -> tuple[int, int]:
        n = len(buf)
        c = buf[i]
        if c in _CLAUSE_FULLWIDTH:
            return _CLAUSE, i + 1
        if c == _EM_DASH:
            j = i
            while j < n and buf[j] == _EM_DASH:
                j += 1
            if j == n and not final:
                return _WAIT, i
            return _CLAUSE, j
        if i + 1 == n:
            return (_CLAUSE, n) if final else (_WAIT, i)
        return (_CLAUSE, i + 1) if buf[i + 1].isspace() else (_SKIP, i + 1)

    @staticmethod
    def _dot_is_not_terminal(buf: str, i: int) -> bool:
        """True when the single ``.`` at ``buf[i]`` closes an abbreviation, initial or list marker."""
        start = i
        while start > 0 and (buf[start - 1].isalnum() or buf[start - 1] == "."):
            start -= 1
        word = buf[start:i].lstrip(".")
        if not word:
            return False
        if word.lower() in _ABBREVIATIONS:
            return True
        if word.isdigit():
            if len(word) > 3:
                return False
            start = i - len(word)
            while start > 0 and buf[start - 1] in " \t":
                start -= 1
            return start == 0 or buf[start - 1] in _LIST_MARKER_PREDECESSORS
        if len(word) == 1:
            return word.isupper()
        return _DOTTED_LETTERS_RE.fullmatch(word) is not None
