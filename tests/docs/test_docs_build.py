"""``mkdocs build --strict`` passes: no broken link, no missing page, no docstring mkdocstrings cannot render.

Skipped when MkDocs is not installed (the ``docs`` extra), except under ``CI=1`` where a skipped docs
build would hide a broken site: there it fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs._snippets import ROOT
from tests.fakes._patience import PATIENCE

NEEDED = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing() -> list[str]:
    missing = []
    for name in NEEDED:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        reason = f"the docs extra is not installed (missing {', '.join(missing)}): pip install -e '.[docs]'"
        if os.environ.get("CI"):
            pytest.fail(f"CI=1 needs the docs site built, but {reason}")
        pytest.skip(reason)
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=300 * PATIENCE,
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-6000:]}"
    pages = {p.relative_to(site).as_posix() for p in site.rglob("index.html")}
    for page in ("configuration/index.html", "reference/client/index.html", "events/index.html"):
        assert page in pages, sorted(pages)
    # The API reference really is generated from the docstrings, not an empty page.
    reference = (site / "reference" / "client" / "index.html").read_text(encoding="utf-8")
    assert "getpatter.Patter" in reference and "webhook_url" in reference
    # Offline site: no web fonts or analytics fetched from a CDN.
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        for host in ("fonts.googleapis.com", "fonts.gstatic.com", "googletagmanager.com"):
            assert host not in text, f"{html.relative_to(site)} references {host}"
