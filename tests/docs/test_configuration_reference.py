"""The Configuration page and the code agree (issue 25).

Both directions are checked, so the page cannot miss an option and cannot document one that is gone:

* every parameter of ``Patter.__init__`` is a row of the ``Patter(...)`` table, and every row of that
  table is a parameter;
* every ``PATTER_*`` name used in ``src/getpatter`` (a string literal that is exactly such a name) is a
  row of the ``PATTER_*`` table, and every row is used in the code;
* every other environment variable the page lists appears in the code as a string literal.

On failure the message lists exactly the names to add to or remove from ``docs/configuration.md``.
"""

from __future__ import annotations

import ast
import inspect
import re

from getpatter import Patter
from tests.docs._snippets import DOCS, ROOT

PAGE = DOCS / "configuration.md"
SRC = ROOT / "src" / "getpatter"
PATTER_NAME = re.compile(r"^PATTER_[A-Z0-9_]+$")
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
FIRST_CELL_NAMES = re.compile(r"`([^`]+)`")


def tables(markdown: str) -> dict[str, list[str]]:
    """``{heading: [first cell of each row]}`` for every Markdown table under a ``##`` heading."""
    found: dict[str, list[str]] = {}
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            continue
        if not line.startswith("|") or re.match(r"^\|[\s:|-]+\|$", line):
            continue
        first = line.strip().strip("|").split("|")[0].strip()
        found.setdefault(heading, []).append(first)
    return {name: rows[1:] for name, rows in found.items()}  # drop each header row


def names_in(cells: list[str]) -> set[str]:
    return {name for cell in cells for name in FIRST_CELL_NAMES.findall(cell)}


def page_tables() -> dict[str, list[str]]:
    return tables(PAGE.read_text(encoding="utf-8"))


def table(title: str) -> set[str]:
    found = page_tables()
    assert title in found, f"docs/configuration.md has no table under '## {title}' (tables: {sorted(found)})"
    return names_in(found[title])


def string_literals() -> dict[str, list[str]]:
    """Every string constant in ``src/getpatter`` -> the files it occurs in."""
    seen: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                seen.setdefault(node.value, []).append(str(path.relative_to(ROOT)))
    return seen


def diff_message(what: str, in_code: set[str], on_page: set[str]) -> str:
    missing, extra = sorted(in_code - on_page), sorted(on_page - in_code)
    parts = [f"docs/configuration.md is out of date with the code for {what}."]
    if missing:
        parts.append(f"Add rows for (in the code, not on the page): {', '.join(missing)}")
    if extra:
        parts.append(f"Remove rows for (on the page, not in the code): {', '.join(extra)}")
    return "\n".join(parts)


def test_patter_parameters_match_the_table() -> None:
    in_code = {
        name
        for name, param in inspect.signature(Patter.__init__).parameters.items()
        if name != "self" and param.kind is not inspect.Parameter.VAR_KEYWORD  # Patter-only names: refused
    }
    on_page = table("`Patter(...)` parameters")
    assert in_code == on_page, diff_message("Patter(...) parameters", in_code, on_page)


def test_patter_environment_variables_match_the_table() -> None:
    in_code = {value for value in string_literals() if PATTER_NAME.match(value)}
    on_page = table("`PATTER_*` environment variables")
    assert in_code == on_page, diff_message("PATTER_* environment variables", in_code, on_page)


def test_other_listed_variables_exist_in_the_code() -> None:
    literals = string_literals()
    listed = {name for name in table("Other environment variables") if ENV_NAME.match(name)}
    assert listed, "the 'Other environment variables' table lists no variable"
    unknown = sorted(name for name in listed if name not in literals)
    assert not unknown, f"docs/configuration.md lists variables the code never reads: {', '.join(unknown)}"
    assert not {n for n in listed if n.startswith("PATTER_")}, "PATTER_* names belong in the PATTER_* table"


def test_the_table_parser_reads_first_cells() -> None:
    page = (
        "## A\n\n| Name | x |\n|---|---|\n| `one`, `two` | `not_me` |\n| `three` | y |\n## B\n| h |\n|---|\n"
    )
    assert {k: names_in(v) for k, v in tables(page).items()} == {"A": {"one", "two", "three"}, "B": set()}


def test_the_diff_message_names_both_directions() -> None:
    message = diff_message("x", {"PATTER_A", "PATTER_B"}, {"PATTER_B", "PATTER_C"})
    assert "Add rows for (in the code, not on the page): PATTER_A" in message
    assert "Remove rows for (on the page, not in the code): PATTER_C" in message
