"""The snippet finder itself: markers, fences and unknown markers (so the docs tests cannot go blind)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs._snippets import all_snippets, snippets_in

PAGE = """# Page

```python
x = 1
```

<!-- snippet: compile-only -->

```python
import asyncio
```

```bash
echo not python
```

<!-- snippet: fake-openai -->
!!! note
    ```python
    y = 2
    ```
"""


def test_finds_python_fences_and_reads_the_marker_above(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    found = snippets_in(page)
    assert [(s.line, s.code, s.mode, s.compile_only) for s in found] == [
        (3, "x = 1\n", "", False),
        (9, "import asyncio\n", "compile-only", True),
        (19, "y = 2\n", "", False),  # the marker is not the line right above this fence
    ]


def test_an_unknown_marker_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- snippet: skip -->\n```python\nx = 1\n```\n")
    with pytest.raises(ValueError, match="unknown snippet marker 'skip'"):
        snippets_in(page)


def test_the_docs_have_snippets_of_both_kinds() -> None:
    snippets = all_snippets()
    executed = [s for s in snippets if not s.compile_only]
    compile_only = [s for s in snippets if s.compile_only]
    assert len(executed) >= 8, [s.id for s in executed]
    # Compile-only snippets are the exception (they need a real account): keep them a minority.
    assert 0 < len(compile_only) < len(executed) + 4, [s.id for s in compile_only]
    assert any(s.path.name == "README.md" for s in snippets)


def test_the_fake_openai_marker_is_read(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- snippet: fake-openai -->\n```python\nx = 1\n```\n")
    [snippet] = snippets_in(page)
    assert (snippet.mode, snippet.compile_only) == ("fake-openai", False)
