"""Browser tests: headless Chromium through Playwright (Python package only, system Chromium)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the dashboard in headless Chromium (Playwright)")
