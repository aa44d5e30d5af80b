"""The package's shape: carriers stay in ``carriers/``, imports point down, ``server/`` has no cycle.

These read the source with ``ast`` (nothing is imported or run), so they hold for every module, including
the ones no test happens to load.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

import getpatter

PACKAGE = pathlib.Path(getpatter.__file__).parent
CARRIERS = sorted(p.name for p in (PACKAGE / "carriers").iterdir() if (p / "__init__.py").is_file())
_NAMED = re.compile("|".join(CARRIERS), re.IGNORECASE)
_PATH = re.compile(r"/(?:" + "|".join(CARRIERS) + r")\b", re.IGNORECASE)

#: Modules outside ``carriers/`` that may name a carrier, and why. Keep it this small.
ALLOWED = {
    # The public facade re-exports the carrier configs (``from getpatter import Twilio``).
    "__init__.py": "public re-exports",
    # Dev tools that play one carrier's side of a call on purpose (a fake Twilio account and caller).
    "simulator/__init__.py": "the simulator is a Twilio stand-in",
    "simulator/twilio.py": "the simulator is a Twilio stand-in",
    "demo.py": "wires the Twilio simulator to a Twilio carrier",
    # Default per-minute prices are keyed by carrier name (metrics/pricing.py is owned by the metrics work).
    "metrics/pricing.py": "price table keyed by carrier name",
}


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def carrier_mentions(source: str) -> list[str]:
    """Code (not docstrings or comments) that names a carrier: an import of a carrier's package, an
    identifier (``Twilio``, ``state.telnyx``, ``TWILIO_STATUS_PATH``), a string that *is* a carrier's
    name (``kind == "twilio"``) or one of its route paths (``"/webhooks/twilio/voice"``)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    hits: list[str] = []
    for node in ast.walk(tree):
        found = ""
        if isinstance(node, ast.ImportFrom) and node.module and _NAMED.search(node.module):
            found = node.module
        elif isinstance(node, ast.alias) and _NAMED.search(node.name):
            found = node.name
        elif isinstance(node, ast.Name) and _NAMED.search(node.id):
            found = node.id
        elif isinstance(node, ast.Attribute) and _NAMED.search(node.attr):
            found = node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value.strip().lower()
            if text in CARRIERS or _PATH.search(text):
                found = repr(node.value)
        if found:
            hits.append(f"line {getattr(node, 'lineno', '?')}: {found}")
    return hits


def _modules() -> list[tuple[str, pathlib.Path]]:
    return [(p.relative_to(PACKAGE).as_posix(), p) for p in sorted(PACKAGE.rglob("*.py"))]


def test_the_carrier_check_catches_what_it_is_for() -> None:
    assert CARRIERS == ["browser", "telnyx", "twilio"]
    caught = carrier_mentions(
        "from getpatter.carriers.twilio.rest import TwilioRestClient\n"
        "if state.runtime.carrier == 'telnyx':\n    pass\n"
        "ok = isinstance(c, Twilio)\nclient = state.telnyx\nPATH = '/webhooks/twilio/status'\n"
    )
    assert len(caught) >= 6, caught
    fine = '"""Twilio and Telnyx in a docstring."""\n# twilio in a comment\nx = "Fix: use Twilio(...)"\n'
    assert carrier_mentions(fine) == []


def test_no_module_outside_carriers_names_a_carrier() -> None:
    offenders = {
        rel: hits
        for rel, path in _modules()
        if not rel.startswith("carriers/") and rel not in ALLOWED
        if (hits := carrier_mentions(path.read_text()))
    }
    assert offenders == {}, "carrier specifics belong in carriers/<name>/: " + repr(offenders)


@pytest.mark.parametrize("rel", sorted(ALLOWED))
def test_every_allowed_module_still_needs_its_exception(rel: str) -> None:
    still = carrier_mentions((PACKAGE / rel).read_text())
    assert still, f"{rel} no longer names a carrier: drop it from ALLOWED"


def _imports(path: pathlib.Path) -> set[str]:
    """Every ``getpatter`` module ``path`` imports, at run time or for type checking."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name.startswith("getpatter.")}


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in ``graph`` (as a path that comes back to its start), or ``[]``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_server_modules_import_each_other_without_a_cycle() -> None:
    server = {
        f"getpatter.server.{p.stem}": p for p in (PACKAGE / "server").glob("*.py") if p.stem != "__init__"
    }
    graph = {name: _imports(path) & set(server) for name, path in server.items()}
    assert {"getpatter.server.state", "getpatter.server.app", "getpatter.server.build"} <= set(graph)
    assert _cycle(graph) == []


def test_carriers_import_nothing_above_them() -> None:
    """Carriers sit below the call layer and the server: their routes reach the server only through
    ``carriers/host.py``'s protocols."""
    above = ("getpatter.server", "getpatter.call", "getpatter.patter", "getpatter.outbound")
    offenders = {
        rel: sorted(name for name in _imports(path) if name.startswith(above))
        for rel, path in _modules()
        if rel.startswith("carriers/")
    }
    assert {rel: names for rel, names in offenders.items() if names} == {}
