"""Import an optional dependency of the ``local`` extra, or say exactly how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from getpatter.errors import PatterConfigError


def require(module: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PatterConfigError(
            f"{package} is not installed. Fix: pip install 'getpatter[local]' (offline speech models)"
        ) from exc
