"""Dynamic ``{key}`` variables for system prompts and first messages (API.md A.1 #23, C15, C16).

Values can come from the phone network (carrier custom parameters) or from the caller, so they are
untrusted: every value is sanitized and capped, and substitution is a single literal pass. There is no
``str.format`` (no ``{x.attr}`` / ``{x[0]}`` evaluation) and substituted values are never re-scanned, so a
value containing ``{other}`` stays literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = ["MAX_VARIABLE_CHARS", "sanitize_variable", "substitute_variables"]

MAX_VARIABLE_CHARS: Final = 500

# C0 and C1 controls and DEL (newlines and tabs included: a value must not be able to start a new prompt
# line), the Unicode line/paragraph separators, and bidi embedding/override/isolate controls (which can
# make displayed text differ from what the model reads).
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PLACEHOLDER: Final = re.compile(r"\{([^{}]+)\}")


def sanitize_variable(value: object) -> str:
    """``str(value)`` with control characters removed, truncated to :data:`MAX_VARIABLE_CHARS`."""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub("", text)
    return text[:MAX_VARIABLE_CHARS]


def substitute_variables(template: str, variables: Mapping[str, object] | None) -> str:
    """Replace each ``{key}`` whose ``key`` is in ``variables`` by its sanitized value.

    Placeholders are matched exactly (``{ name }`` is not ``{name}``); unknown ``{...}`` and JSON-like
    braces are left untouched. ``{{key}}`` becomes ``{value}``, as with a plain string replace.
    """
    if not variables or "{" not in template:
        return template
    cache: dict[str, str] = {}

    def repl(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in cache:
            return cache[key]
        if key not in variables:
            return m.group(0)
        cache[key] = value = sanitize_variable(variables[key])
        return value

    return _PLACEHOLDER.sub(repl, template)
