"""SentenceChunker: boundary rules, first flush, streaming invariants."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from getpatter.text import FIRST_FLUSH_MIN_CHARS, SentenceChunker


def chunks(text: str, *, step: int = 1, **kwargs: Any) -> list[str]:
    """Stream ``text`` in ``step``-sized deltas, then flush; return every chunk released."""
    chunker = SentenceChunker(**kwargs)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += chunker.push(text[i : i + step])
    return out + chunker.flush()


def split_all(text: str, **kwargs: Any) -> list[str]:
    """Same result streamed char by char and in one delta (sanity check of delta independence)."""
    by_char = chunks(text, step=1, **kwargs)
    whole = chunks(text, step=max(1, len(text)), **kwargs)
    assert by_char == whole
    return by_char


# --- basic terminators ---------------------------------------------------------------------------------


def test_splits_on_latin_terminators() -> None:
    assert split_all("Hello there. How are you? I'm great! Thanks…") == [
        "Hello there.",
        "How are you?",
        "I'm great!",
        "Thanks…",
    ]


def test_sentence_released_as_soon_as_next_word_starts() -> None:
    c = SentenceChunker()
    assert c.push("Hello there.") == []
    assert c.push(" ") == []
    assert c.push("How") == ["Hello there."]
    assert c.push(" are you?") == []
    assert c.flush() == ["How are you?"]


def test_question_mark_released_on_whitespace() -> None:
    c = SentenceChunker()
    assert c.push("Are you there? ") == ["Are you there?"]


def test_terminator_runs_and_closing_quotes_stay_with_sentence() -> None:
    assert split_all('Really?! He said "fine." Then (quietly.) Okay then.') == [
        "Really?!",
        'He said "fine."',
        "Then (quietly.)",
        "Okay then.",
    ]


def test_markdown_emphasis_after_terminator() -> None:
    assert split_all("**Welcome back.** Let me check.") == ["**Welcome back.**", "Let me check."]


def test_newline_ends_a_chunk() -> None:
    assert split_all("Here are options:\n1. Pizza\n2. Pasta") == ["Here are options:", "1. Pizza", "2. Pasta"]


# --- things that are not boundaries --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Pi is about 3.14 these days.",
        "It costs $4.50 per month.",
        "We open at 10.30 every day.",
        "Visit www.example.com/path.html today.",
        "Write to john.doe@example.co.uk for help.",
        "Version 2.0.1 fixed it.",
    ],
)
def test_no_split_inside_tokens(text: str) -> None:
    assert split_all(text) == [text]


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Smith is here now.",
        "Mrs. Brown and Ms. Green came.",
        "Call Dr. Jones on Baker St. tomorrow.",
        "It was cats vs. dogs all along.",
        "Bring fruit, e.g. apples or pears.",
        "Bring fruit, i.e. Apples only.",
        "DR. NO was a film.",
        "Meet at 5 p.m. sharp, or 9 A.M. Tuesday.",
        "The U.S. Army replied.",
        "Pens, paper, etc. All here.",
        "J. R. R. Tolkien wrote it.",
        "J.R.R. Tolkien wrote it.",
        "Prof. Ph.D. Smith agreed.",
    ],
)
def test_no_split_after_abbreviations_and_initials(text: str) -> None:
    assert split_all(text) == [text]


def test_abbreviation_then_real_sentence_end() -> None:
    assert split_all("I saw Mr. Smith. He waved.") == ["I saw Mr. Smith.", "He waved."]


def test_lowercase_continuation_is_not_a_boundary() -> None:
    assert split_all("Use approx. five cups. Then stir.") == ["Use approx. five cups.", "Then stir."]


def test_ellipsis() -> None:
    assert split_all("Well... maybe not. Hmm… I see. Wait... What?") == [
        "Well... maybe not.",
        "Hmm… I see.",
        "Wait...",
        "What?",
    ]


def test_numbered_list_markers() -> None:
    assert split_all("1. Open the app. 2. Tap login.") == ["1. Open the app.", "2. Tap login."]
    assert split_all("Steps: 1. Open it. 2. Close it.") == ["Steps: 1. Open it.", "2. Close it."]


def test_number_ending_a_sentence_still_splits() -> None:
    assert split_all("The answer is 42. Next question.") == ["The answer is 42.", "Next question."]
    assert split_all("It happened in 1999. Then more.") == ["It happened in 1999.", "Then more."]


# --- multilingual --------------------------------------------------------------------------------------


def test_cjk_terminators_need_no_space() -> None:
    assert split_all("今日は良い天気です。散歩に行きましょう！どう思いますか？") == [
        "今日は良い天気です。",
        "散歩に行きましょう！",
        "どう思いますか？",
    ]


def test_cjk_closing_bracket_stays() -> None:
    assert split_all("他说：「我们走吧。」然后离开了。") == ["他说：「我们走吧。」", "然后离开了。"]


def test_devanagari_danda() -> None:
    assert split_all("नमस्ते, आप कैसे हैं। मैं ठीक हूँ॥ धन्यवाद।") == [
        "नमस्ते, आप कैसे हैं।",
        "मैं ठीक हूँ॥",
        "धन्यवाद।",
    ]


def test_arabic_question_mark() -> None:
    assert split_all("كيف حالك؟ أنا بخير، شكرا.") == ["كيف حالك؟", "أنا بخير، شكرا."]


def test_strong_terminator_waits_for_possible_closer() -> None:
    c = SentenceChunker()
    assert c.push("我们走吧。") == []
    assert c.push("」") == []
    assert c.push("好") == ["我们走吧。」"]


# --- tiny fragments ------------------------------------------------------------------------------------


def test_tiny_fragment_merged_with_next() -> None:
    assert split_all("Ok. Let me look that up.") == ["Ok. Let me look that up."]


def test_tiny_fragment_released_at_flush() -> None:
    assert split_all("Let me look that up. Ok.") == ["Let me look that up.", "Ok."]
    c = SentenceChunker()
    assert c.push("Ok.") == []
    assert c.flush() == ["Ok."]


def test_min_chars_zero_releases_everything() -> None:
    assert split_all("Ok. Yes. No.", min_chars=0) == ["Ok.", "Yes.", "No."]


def test_min_chars_validation() -> None:
    with pytest.raises(ValueError, match="min_chars"):
        SentenceChunker(min_chars=-1)
    with pytest.raises(TypeError, match="language"):
        SentenceChunker(language=None)  # type: ignore[arg-type]


# --- aggressive first flush ----------------------------------------------------------------------------

LONG_FIRST = (
    "Sure, I can definitely help you with that booking today, let me pull up the calendar. One moment."
)


def test_first_flush_releases_first_clause_once_long_enough() -> None:
    out = split_all(LONG_FIRST, aggressive_first_flush=True)
    assert out == [
        "Sure, I can definitely help you with that booking today,",
        "let me pull up the calendar.",
        "One moment.",
    ]
    assert len(out[0]) >= FIRST_FLUSH_MIN_CHARS
    # "Sure," alone is too short to be the first chunk.


def test_first_flush_only_applies_to_first_chunk() -> None:
    text = "Hello there. I can definitely help you with that booking today, and also the other one. Bye."
    assert split_all(text, aggressive_first_flush=True) == [
        "Hello there.",
        "I can definitely help you with that booking today, and also the other one.",
        "Bye.",
    ]


def test_first_flush_off_by_default() -> None:
    assert split_all(LONG_FIRST) == [
        "Sure, I can definitely help you with that booking today, let me pull up the calendar.",
        "One moment.",
    ]


@pytest.mark.parametrize("language", ["it", "it-IT", "IT", "it_CH"])
def test_first_flush_disabled_for_italian(language: str) -> None:
    text = (
        "Certo, posso sicuramente aiutarti con la prenotazione di oggi, controllo il calendario. Un attimo."
    )
    c = SentenceChunker(language=language, aggressive_first_flush=True)
    assert not c.first_flush_enabled
    assert split_all(text, language=language, aggressive_first_flush=True) == [
        "Certo, posso sicuramente aiutarti con la prenotazione di oggi, controllo il calendario.",
        "Un attimo.",
    ]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        (
            "Let me think about this for just a moment — the answer is yes. Good.",
            "Let me think about this for just a moment —",
        ),
        (
            "Let me think about this for just a moment—the answer is yes. Good.",
            "Let me think about this for just a moment—",
        ),
        (
            "Let me think about this carefully right now; it is yes. Good.",
            "Let me think about this carefully right now;",
        ),
        (
            "Here is what I found about your order today: it shipped. Good.",
            "Here is what I found about your order today:",
        ),
        (
            "Let me think about this carefully right now – it is yes. Good.",
            "Let me think about this carefully right now –",
        ),
    ],
)
def test_first_flush_clause_marks(text: str, first: str) -> None:
    assert split_all(text, aggressive_first_flush=True)[0] == first


def test_first_flush_ignores_commas_in_numbers_and_times() -> None:
    text = "The total for all of your orders comes to 1,250 dollars at 10:30 today. Thanks."
    assert split_all(text, aggressive_first_flush=True) == [
        "The total for all of your orders comes to 1,250 dollars at 10:30 today.",
        "Thanks.",
    ]


def test_first_flush_rearms_after_flush_and_reset() -> None:
    c = SentenceChunker(aggressive_first_flush=True)
    c.push(LONG_FIRST)
    c.flush()
    first = c.push("Okay, so I have looked into the details of your account, and")
    assert first == ["Okay, so I have looked into the details of your account,"]
    c.reset()
    assert c.pending == ""
    assert c.push("Okay, so I have looked into the details of your account, and") == first


# --- lifecycle -----------------------------------------------------------------------------------------


def test_reset_discards_pending_text() -> None:
    c = SentenceChunker()
    c.push("This will be interrupted")
    c.reset()
    assert c.flush() == []


def test_empty_and_whitespace_input() -> None:
    c = SentenceChunker()
    assert c.push("") == []
    assert c.push("   \n  ") == []
    assert c.flush() == []


# --- properties ----------------------------------------------------------------------------------------

_PIECES = [
    "Hello", "world", "Mr", "Dr", "e.g", "U.S", "J", "a.m", "3", "14", "$4", "50", "10", "1", "42",
    "etc", "ok", "Ok", "well", "the", "A", "x@y.com", "www.a.b", "今日", "नमस्ते", "كيف",
    ".", ".", ".", "!", "?", "…", "...", "?!", "。", "！", "？", "।", "؟", ",", ";", ":", "—", "–", "，",
    " ", " ", " ", "  ", "\n", "\t", '"', "”", ")", "」", "*", "**", "'",
]  # fmt: skip

texts = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=60).map("".join),
    st.text(alphabet=st.sampled_from(list("ab Z9.!?,:— \n。…")), max_size=80),
    st.text(max_size=60),
)
configs = st.fixed_dictionaries(
    {
        "aggressive_first_flush": st.booleans(),
        "min_chars": st.integers(min_value=0, max_value=12),
        "language": st.sampled_from(["en", "it", "ja"]),
    }
)


def stream(text: str, cuts: list[int], config: dict[str, object]) -> list[str]:
    chunker = SentenceChunker(**config)  # type: ignore[arg-type]
    bounds = [0, *sorted({c % (len(text) + 1) for c in cuts}), len(text)]
    out: list[str] = []
    for a, b in itertools.pairwise(bounds):
        out += chunker.push(text[a:b])
    return out + chunker.flush()


def squash(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=400, deadline=None)
@given(text=texts, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30), config=configs)
def test_property_output_is_input_modulo_whitespace(
    text: str, cuts: list[int], config: dict[str, object]
) -> None:
    out = stream(text, cuts, config)
    assert squash("".join(out)) == squash(text)
    assert all(chunk and chunk == chunk.strip() for chunk in out)


@settings(max_examples=400, deadline=None)
@given(
    text=texts,
    cuts_a=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    cuts_b=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    config=configs,
)
def test_property_output_independent_of_delta_split(
    text: str, cuts_a: list[int], cuts_b: list[int], config: dict[str, object]
) -> None:
    reference = stream(text, [], config)
    assert stream(text, cuts_a, config) == reference
    assert stream(text, cuts_b, config) == reference


@settings(max_examples=200, deadline=None)
@given(text=texts, config=configs)
def test_property_char_by_char_equals_whole(text: str, config: dict[str, object]) -> None:
    assert stream(text, list(range(len(text))), config) == stream(text, [], config)
