"""Per-token cost of the text path: SentenceChunker.push, with and without the TTS filters.

Streams a long LLM-like reply in ~4-character deltas (typical token size) and prints microseconds per
token. Run: ``python benchmarks/bench_chunker.py``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from getpatter.text import SentenceChunker, filter_for_tts

PARAGRAPH = (
    "Sure, I can help with that! Your order #4521 shipped on Jan. 5 at 10.30 a.m. and costs $49.99 in total. "
    "Mr. Smith from the U.S. office, i.e. our logistics team, confirmed it... It should arrive by Friday. "
    "Here are your options:\n1. Keep the delivery date.\n2. Change the address, e.g. to your office.\n"
    "Would you like me to **update** anything? Let me know — I'm happy to help 😊. "
)
REPEATS = 200
ROUNDS = 5


def tokens() -> list[str]:
    text = PARAGRAPH * REPEATS
    # split into word-piece-like deltas of at most 4 characters, keeping leading spaces like BPE tokens
    return [piece for word in re.findall(r"\s*\S+", text) for piece in re.findall(r".{1,4}", word, re.S)]


def run(toks: list[str], on_sentence: Callable[[str], object] | None, first_flush: bool) -> tuple[float, int]:
    best = float("inf")
    sentences = 0
    for _ in range(ROUNDS):
        chunker = SentenceChunker(aggressive_first_flush=first_flush)
        sentences = 0
        start = time.perf_counter()
        for tok in toks:
            for sentence in chunker.push(tok):
                sentences += 1
                if on_sentence is not None:
                    on_sentence(sentence)
        for sentence in chunker.flush():
            sentences += 1
            if on_sentence is not None:
                on_sentence(sentence)
        best = min(best, time.perf_counter() - start)
    return best / len(toks) * 1e6, sentences


def main() -> None:
    toks = tokens()
    print(f"{len(toks)} tokens, {sum(map(len, toks))} chars, best of {ROUNDS}")
    cases: list[tuple[str, Callable[[str], object] | None, bool]] = [
        ("chunker", None, False),
        ("chunker, aggressive_first_flush", None, True),
        ("chunker + filter_for_tts per sentence", filter_for_tts, False),
    ]
    for label, fn, first_flush in cases:
        us, n = run(toks, fn, first_flush)
        print(f"{label:40s} {us:6.2f} us/token  ({n} chunks)")


if __name__ == "__main__":
    main()
