"""Output guardrails: blocked terms, custom checks, ordering, logging, and configuration errors."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from getpatter.errors import PatterConfigError
from getpatter.guardrails import DEFAULT_REPLACEMENT, Guardrail, first_blocking, guardrail


def test_defaults_and_factory() -> None:
    g = guardrail("no_pricing", blocked_terms=["discount"])
    assert g == Guardrail("no_pricing", blocked_terms=("discount",))
    assert g.replacement == DEFAULT_REPLACEMENT == "I'm sorry, I can't respond to that."
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "blocked"),
    [
        ("We offer a DISCOUNT today", True),
        ("discounted prices", True),  # substring, not whole word
        ("Your Credit Card number", True),
        ("your credit\n   card", True),  # whitespace runs count as one space
        ("creditcard", False),  # no fuzzy matching
        ("credit-card", False),
        ("Nothing to see", False),
        ("STRASSE", True),  # Unicode case folding: "straße" folds to "strasse"
    ],
)
def test_blocked_terms_are_case_insensitive_substrings(text: str, blocked: bool) -> None:
    g = Guardrail("terms", blocked_terms=["discount", "credit  card", " Straße "])
    assert g.blocks(text) is blocked


def test_check_function_blocks_when_true() -> None:
    g = Guardrail("long", check=lambda text: len(text) > 10)
    assert g.blocks("this is too long")
    assert not g.blocks("short")


def test_terms_are_checked_before_check() -> None:
    calls: list[str] = []

    def check(text: str) -> bool:
        calls.append(text)
        return False

    g = Guardrail("both", blocked_terms=["secret"], check=check)
    assert g.blocks("a secret")
    assert calls == []
    assert not g.blocks("public")
    assert calls == ["public"]


def test_first_match_wins_in_order(caplog: pytest.LogCaptureFixture) -> None:
    a = Guardrail("a", blocked_terms=["x"], replacement="A")
    b = Guardrail("b", blocked_terms=["y"], replacement="B")
    c = Guardrail("c", check=lambda text: True, replacement="C")
    with caplog.at_level(logging.WARNING, logger="getpatter.guardrails"):
        assert first_blocking("y and x", [a, b, c]) is a
        assert first_blocking("only y", [a, b, c]) is b
        assert first_blocking("nothing", [a, b, c]) is c
        assert first_blocking("nothing", [a, b]) is None
        assert first_blocking("anything", []) is None
    assert [r.getMessage() for r in caplog.records] == [
        "guardrail 'a' blocked the agent's output",
        "guardrail 'b' blocked the agent's output",
        "guardrail 'c' blocked the agent's output",
    ]


def test_block_log_never_contains_the_text(caplog: pytest.LogCaptureFixture) -> None:
    g = Guardrail("pii", blocked_terms=["ssn"])
    with caplog.at_level(logging.DEBUG):
        first_blocking("my SSN is 123-45-6789", [g])
    assert caplog.records
    assert all("6789" not in r.getMessage() and "SSN" not in r.getMessage() for r in caplog.records)


def test_raising_check_is_logged_and_not_blocked(caplog: pytest.LogCaptureFixture) -> None:
    def broken(text: str) -> bool:
        raise RuntimeError("classifier offline")

    bad = Guardrail("classifier", check=broken)
    later = Guardrail("later", blocked_terms=["bomb"])
    with caplog.at_level(logging.WARNING, logger="getpatter.guardrails"):
        assert first_blocking("hello", [bad]) is None
        assert first_blocking("a bomb", [bad, later]) is later
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and all("'classifier'" in r.getMessage() for r in errors)
    assert errors[0].exc_info is not None


def test_awaitable_from_check_is_not_blocked_and_not_leaked(caplog: pytest.LogCaptureFixture) -> None:
    async def sneaky(text: str) -> bool:
        return True

    g = Guardrail("sneaky", check=lambda text: sneaky(text))  # type: ignore[arg-type,return-value]
    with caplog.at_level(logging.ERROR, logger="getpatter.guardrails"):
        assert not g.blocks("x")  # the coroutine is closed, so no "never awaited" warning either
    assert "sync function" in caplog.text


def test_configuration_errors() -> None:
    with pytest.raises(PatterConfigError, match="blocks nothing"):
        Guardrail("empty")
    with pytest.raises(PatterConfigError, match="blocks nothing"):
        Guardrail("empty", blocked_terms=[])
    with pytest.raises(PatterConfigError, match="empty term"):
        Guardrail("blank", blocked_terms=["ok", "  "])
    with pytest.raises(PatterConfigError, match="name"):
        Guardrail(" ", blocked_terms=["x"])
    with pytest.raises(ValueError):  # PatterConfigError is a ValueError
        guardrail("empty")


def test_type_errors() -> None:
    with pytest.raises(TypeError, match=r"blocked_terms=\['bad'\]"):
        Guardrail("g", blocked_terms="bad")
    with pytest.raises(TypeError):
        Guardrail("g", blocked_terms=["ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        Guardrail("g", check="not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sync"):

        async def async_check(text: str) -> bool:
            return False

        Guardrail("g", check=async_check)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Guardrail(1, blocked_terms=["x"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Guardrail("g", blocked_terms=["x"], replacement=None)  # type: ignore[arg-type]
