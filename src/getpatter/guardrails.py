"""Output guardrails: stop the agent from *saying* certain things (API.md A.1 row 22, A.12).

The call layer runs :func:`first_blocking` on the model's text before it reaches TTS; when a guardrail
blocks, the text is dropped and the guardrail's ``replacement`` is spoken instead.

Matching rules:

* guardrails are evaluated in order; the first that blocks wins;
* ``blocked_terms`` are case-insensitive substring matches (Unicode case folding). Runs of whitespace
  count as one space on both sides, so ``"credit card"`` also blocks ``"Credit\\n  card"``; terms are
  stripped, and ``"creditcard"`` does *not* match ``"credit card"`` (no fuzzy matching);
* then ``check(text) -> bool`` (``True`` = blocked). A check that raises is logged with the guardrail's
  name and treated as *not blocked*: a buggy guardrail must not silence every reply of a live call.

A block is logged at WARNING with the guardrail's name, never the text (it may hold personal data).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from getpatter.errors import PatterConfigError, PatterTypeError

logger = logging.getLogger(__name__)

DEFAULT_REPLACEMENT = "I'm sorry, I can't respond to that."
_SPACES = re.compile(r"\s+")


def _normalize(text: str) -> str:
    return _SPACES.sub(" ", text).casefold()


@dataclass(frozen=True, slots=True)
class Guardrail:
    """A named output filter: blocked terms, a custom ``check``, or both (at least one is required)."""

    name: str
    blocked_terms: Sequence[str] | None = None
    check: Callable[[str], bool] | None = None
    replacement: str = DEFAULT_REPLACEMENT
    _terms: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise PatterTypeError(f"Guardrail name must be a str, got {type(self.name).__name__}")
        if not self.name.strip():
            raise PatterConfigError(
                "Guardrail name must not be empty. Fix: Guardrail(name='no_pricing', ...)."
            )
        where = f"Guardrail {self.name!r}"
        terms = self._check_terms(where)
        object.__setattr__(self, "blocked_terms", terms if self.blocked_terms is not None else None)
        object.__setattr__(self, "_terms", tuple(_normalize(term).strip() for term in terms))
        if self.check is not None:
            if not callable(self.check):
                raise PatterTypeError(
                    f"{where}: check must be a function (text) -> bool, got {type(self.check).__name__}"
                )
            if inspect.iscoroutinefunction(self.check):
                raise PatterTypeError(
                    f"{where}: check must be a plain (sync) function (text) -> bool, not async."
                )
        if not terms and self.check is None:
            raise PatterConfigError(
                f"{where} blocks nothing. Fix: pass blocked_terms=['...'] and/or check=lambda text: ..."
            )
        if not isinstance(self.replacement, str):
            raise PatterTypeError(
                f"{where}: replacement must be a str, got {type(self.replacement).__name__}"
            )

    def _check_terms(self, where: str) -> tuple[str, ...]:
        if self.blocked_terms is None:
            return ()
        if isinstance(self.blocked_terms, str | bytes) or not isinstance(self.blocked_terms, Iterable):
            raise PatterTypeError(
                f"{where}: blocked_terms must be a list of str, got {type(self.blocked_terms).__name__}. "
                f"Fix: blocked_terms=[{self.blocked_terms!r}]."
            )
        terms = tuple(self.blocked_terms)
        for term in terms:
            if not isinstance(term, str):
                raise PatterTypeError(f"{where}: blocked_terms must hold str, got {type(term).__name__}")
            if not term.strip():
                raise PatterConfigError(
                    f"{where}: blocked_terms has an empty term, which would block everything. Fix: remove it."
                )
        return terms

    def matches_terms(self, text: str) -> bool:
        """True when ``text`` contains one of the blocked terms (see the module rules)."""
        if not self._terms:
            return False
        normalized = _normalize(text)
        return any(term in normalized for term in self._terms)

    def blocks(self, text: str) -> bool:
        """Whether this guardrail blocks ``text``; a raising ``check`` is logged and counts as not blocked."""
        if self.matches_terms(text):
            return True
        if self.check is None:
            return False
        try:
            verdict = self.check(text)
        except Exception:
            logger.exception("guardrail %r: check raised; treating the text as not blocked", self.name)
            return False
        if inspect.isawaitable(verdict):
            close = getattr(verdict, "close", None)
            if callable(close):
                close()
            logger.error("guardrail %r: check returned an awaitable; use a sync function", self.name)
            return False
        return bool(verdict)


def guardrail(
    name: str,
    blocked_terms: Sequence[str] | None = None,
    check: Callable[[str], bool] | None = None,
    replacement: str = DEFAULT_REPLACEMENT,
) -> Guardrail:
    """Factory form of :class:`Guardrail` (same parameters)."""
    return Guardrail(name, blocked_terms=blocked_terms, check=check, replacement=replacement)


_GUARDRAIL_KEYS = ("name", "blocked_terms", "check", "replacement")


def guardrail_from_dict(spec: Mapping[str, object], where: str = "guardrail") -> Guardrail:
    """A :class:`Guardrail` from the dict form (the keys of :func:`guardrail`); unknown keys are refused."""
    unknown = sorted(str(key) for key in spec if key not in _GUARDRAIL_KEYS)
    if unknown:
        raise PatterConfigError(
            f"{where}: unknown key(s) {unknown}. Fix: use only {list(_GUARDRAIL_KEYS)}, "
            "e.g. {'name': 'no_pricing', 'blocked_terms': ['price'], 'replacement': '...'}."
        )
    if "name" not in spec:
        raise PatterConfigError(f"{where}: missing 'name'. Fix: add 'name': 'no_medical_advice'.")
    kwargs = {key: spec[key] for key in _GUARDRAIL_KEYS if spec.get(key) is not None}
    try:
        return Guardrail(**kwargs)  # type: ignore[arg-type]  # each value is checked in __post_init__
    except PatterConfigError as exc:
        raise type(exc)(f"{where}: {exc}") from None


def normalize_guardrails(guardrails: Iterable[object]) -> tuple[Guardrail, ...]:
    """The user's ``guardrails=`` as :class:`Guardrail` objects: each entry a ``Guardrail`` or its dict form.

    Anything else (a bare function, a string, a list of terms, ...) raises :class:`PatterTypeError` naming the
    entry and the fix, when the agent is built rather than at the first call.
    """
    if isinstance(guardrails, str | bytes | Mapping | Guardrail) or not isinstance(guardrails, Iterable):
        raise PatterTypeError(
            f"guardrails must be a list of Guardrail, got {type(guardrails).__name__}. "
            "Fix: guardrails=[guardrail(name=..., blocked_terms=[...])]."
        )
    result: list[Guardrail] = []
    for index, item in enumerate(guardrails):
        where = f"guardrails[{index}]"
        if isinstance(item, Guardrail):
            result.append(item)
        elif isinstance(item, Mapping):
            result.append(guardrail_from_dict(item, where))
        else:
            hint = (
                f"guardrail(name='my_check', check={getattr(item, '__name__', 'fn')})"
                if callable(item)
                else "guardrail(name='no_pricing', blocked_terms=['price'])"
            )
            raise PatterTypeError(
                f"{where} is a {type(item).__name__}, not a guardrail. Fix: pass {hint} "
                "(or a dict with 'name' and 'blocked_terms' and/or 'check')."
            )
    return tuple(result)


def first_blocking(text: str, guardrails: Iterable[Guardrail]) -> Guardrail | None:
    """The first guardrail (in order) that blocks ``text``, or ``None``; logs the blocker's name."""
    for rail in guardrails:
        if rail.blocks(text):
            logger.warning("guardrail %r blocked the agent's output", rail.name)
            return rail
    return None


__all__ = [
    "DEFAULT_REPLACEMENT",
    "Guardrail",
    "first_blocking",
    "guardrail",
    "guardrail_from_dict",
    "normalize_guardrails",
]
