"""Text transforms: markdown and emoji filters, the combined TTS filter, fail-open apply_transforms."""

from __future__ import annotations

import logging

import pytest

from getpatter.text import apply_transforms, filter_emoji, filter_for_tts, filter_markdown

# --- filter_markdown -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("This is **bold** text", "This is bold text"),
        ("This is __bold__ text", "This is bold text"),
        ("This is *emphasis* here", "This is emphasis here"),
        ("This is _emphasis_ here", "This is emphasis here"),
        ("Run `pip install getpatter` now", "Run pip install getpatter now"),
        ("Use ``a ` b`` please", "Use a ` b please"),
        ("~~old~~ new", "old new"),
        ("# Title", "Title"),
        ("### Section three", "Section three"),
        ("> quoted words", "quoted words"),
        ("Read [the docs](https://example.com/docs) first", "Read the docs first"),
        ("Logo: ![company logo](https://x/logo.png)", "Logo: "),
        ("Go to <https://example.com>", "Go to https://example.com"),
        ("**Half open bold sentence.", "Half open bold sentence."),
        ("end of bold.**", "end of bold."),
    ],
)
def test_markdown_inline(text: str, expected: str) -> None:
    assert filter_markdown(text) == expected


def test_markdown_list_bullets_removed_numbers_kept() -> None:
    assert filter_markdown("- one\n* two\n+ three\n• four\n1. five") == "one\ntwo\nthree\nfour\n1. five"
    assert filter_markdown("  - nested item") == "nested item"


def test_markdown_code_fence_markers_removed_content_kept() -> None:
    assert filter_markdown("Try this:\n```python\nprint(1)\n```\nDone") == "Try this:\nprint(1)\nDone"
    # a fence line arriving alone (sentence chunk) disappears entirely
    assert filter_markdown("```js") == ""
    assert filter_markdown("~~~") == ""


def test_markdown_table() -> None:
    table = "| Plan | Price |\n|------|:-----:|\n| Basic | $5 |\n| Pro | $9 |"
    assert filter_markdown(table) == "Plan, Price\nBasic, $5\nPro, $9"


def test_markdown_horizontal_rule() -> None:
    assert filter_markdown("Above\n---\nBelow") == "Above\nBelow"
    assert filter_markdown("***") == ""


@pytest.mark.parametrize(
    "text",
    [
        "snake_case_name stays",
        "2 * 3 * 4 is 24",
        "Prices: 5*3 and a*b",
        "Plain sentence with no markup.",
        "Dates like 2024-01-01 stay",
        "",
    ],
)
def test_markdown_leaves_plain_text_alone(text: str) -> None:
    assert filter_markdown(text) == text


# --- filter_emoji --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Great 👍 job", "Great job"),
        ("Done 🎉.", "Done."),
        ("👋 Hello", "Hello"),
        ("Bye 👋", "Bye"),
        ("I ❤️ you", "I you"),
        ("Thumbs 👍🏽 up", "Thumbs up"),
        ("Family 👨\u200d👩\u200d👧 time", "Family time"),
        ("Made in 🇮🇹 land", "Made in land"),
        ("Press 1️⃣ now", "Press 1 now"),
        ("Star ⭐ rating", "Star rating"),
        ("Coffee☕time", "Coffeetime"),
        ("🔥🔥🔥", ""),
    ],
)
def test_emoji_removed(text: str, expected: str) -> None:
    assert filter_emoji(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII text, nothing to do.",
        "Copyright © 2024 ACME™ ®",
        "Café, naïve, 日本語, नमस्ते",
        "Malayalam ZWJ: ന്\u200d stays",  # ZWJ outside emoji must survive (Indic shaping)
        "Arrows → and ← stay",
    ],
)
def test_emoji_filter_keeps_text(text: str) -> None:
    assert filter_emoji(text) == text


# --- filter_for_tts ------------------------------------------------------------------------------------


def test_filter_for_tts_combines_and_cleans_whitespace() -> None:
    text = "## Hi there 👋\n\n- **Bold** point 🎉 .\n- [a link](https://x)   here\n"
    assert filter_for_tts(text) == "Hi there Bold point. a link here"


def test_filter_for_tts_plain_text_unchanged() -> None:
    assert (
        filter_for_tts("Your table is booked for 7 p.m. tonight.")
        == "Your table is booked for 7 p.m. tonight."
    )


# --- apply_transforms ----------------------------------------------------------------------------------


def test_apply_transforms_in_order() -> None:
    assert apply_transforms("hello", [str.upper, lambda s: s + "!"]) == "HELLO!"
    assert apply_transforms("hello", [lambda s: s + "!", str.upper]) == "HELLO!"
    assert apply_transforms("a", [lambda s: s + "b", lambda s: s + "c"]) == "abc"


def test_apply_transforms_empty_or_none() -> None:
    assert apply_transforms("same", None) == "same"
    assert apply_transforms("same", []) == "same"


def test_apply_transforms_skips_raising_transform(caplog: pytest.LogCaptureFixture) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="getpatter.text.transforms"):
        assert apply_transforms("hi", [str.upper, broken, lambda s: s + "?"]) == "HI?"
    assert any("broken" in r.getMessage() and r.exc_info for r in caplog.records)


def test_apply_transforms_skips_non_str_result(caplog: pytest.LogCaptureFixture) -> None:
    def returns_none(text: str) -> str:
        return None  # type: ignore[return-value]

    with caplog.at_level(logging.ERROR, logger="getpatter.text.transforms"):
        assert apply_transforms("hi", [returns_none, str.title]) == "Hi"
    assert any("returns_none" in r.getMessage() for r in caplog.records)


def test_builtin_filters_work_as_transforms() -> None:
    assert apply_transforms("**Great** 👍 work", [filter_markdown, filter_emoji]) == "Great work"
    assert apply_transforms("**Great** 👍 work", [filter_for_tts]) == "Great work"
