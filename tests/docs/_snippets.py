"""Find the Python snippets of the user docs (``docs/*.md`` and ``README.md``) and how each is tested.

A fenced ```` ```python ```` block is *executed*, unless the nearest non-blank line above its fence is a
marker:

* ``<!-- snippet: compile-only -->``: it needs a real account (it serves, or places a call), so it is only
  compiled and type-checked;
* ``<!-- snippet: fake-openai -->``: it is executed with a fake OpenAI Chat Completions server from
  ``tests/fakes`` listening on 127.0.0.1, whose ``/v1`` URL is in ``OPENAI_BASE_URL``.

Any other ``<!-- snippet: ... -->`` marker is an error, so a typo cannot silently turn a test off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKER = re.compile(r"^<!--\s*snippet:\s*(?P<mode>[\w-]+)\s*-->$")
MODES = frozenset({"compile-only", "fake-openai"})
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    mode: str  # "" (executed), or one of MODES

    @property
    def compile_only(self) -> bool:
        return self.mode == "compile-only"

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def module_name(self) -> str:
        """A unique, importable file stem for the type checker."""
        stem = re.sub(r"\W", "_", str(self.path.relative_to(ROOT).with_suffix("")))
        return f"snippet_{stem}_{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def snippets_in(path: Path) -> list[Snippet]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, info, start = match["fence"], match["info"].strip(), i
        end = start + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if info.split()[:1] == ["python"]:
            indent = len(match["indent"])
            code = "\n".join(line[indent:] for line in lines[start + 1 : end]) + "\n"
            found.append(Snippet(path, start + 1, code, _marker(path, lines, start)))
        i = end + 1
    return found


def _marker(path: Path, lines: list[str], fence_index: int) -> str:
    j = fence_index - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0:
        return ""
    match = MARKER.match(lines[j].strip())
    if match is None:
        return ""
    if match["mode"] not in MODES:
        raise ValueError(f"{path}:{j + 1}: unknown snippet marker {match['mode']!r}; known: {sorted(MODES)}")
    return match["mode"]


def all_snippets() -> list[Snippet]:
    return [snippet for path in doc_files() for snippet in snippets_in(path)]
