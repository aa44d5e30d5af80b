"""Where per-call logs go: resolve ``Patter(persist=...)`` and ``PATTER_LOG_DIR`` into one root or None.

Precedence (API.md C.1): an explicit ``persist`` wins over the env var; with neither, persistence is off.
Only resolution happens here; creating the directory (and warning if that fails) is the logger's job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from getpatter.errors import PatterConfigError, PatterTypeError

LOG_DIR_ENV = "PATTER_LOG_DIR"
_APP_DIR = "patter"


def default_log_root(platform: str, env: Mapping[str, str], home: Path) -> Path:
    """The per-user data directory for ``platform`` (a ``sys.platform`` value), from ``env`` and ``home``.

    Pure: takes the platform, environment and home explicitly so every OS's rule is testable anywhere.
    """
    if platform == "darwin":
        return home / "Library" / "Application Support" / _APP_DIR
    if platform in ("win32", "cygwin"):
        local = env.get("LOCALAPPDATA", "").strip()
        return (Path(local) if local else home / "AppData" / "Local") / _APP_DIR
    xdg = env.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says relative values are invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / _APP_DIR
    return home / ".local" / "share" / _APP_DIR


def _platform_default(env: Mapping[str, str]) -> Path:
    return default_log_root(sys.platform, env, Path.home())


def resolve_log_root(
    persist: bool | str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Path | None:
    """The persistence root, or ``None`` when persistence is off.

    * ``None``: ``PATTER_LOG_DIR`` decides (``auto`` = platform default, else a path); unset/empty = off.
    * ``False``: off, whatever the env says. ``True``: the platform default.
    * ``str`` / ``PathLike``: that path with ``~`` expanded (``"auto"`` also means the platform default).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if persist is None:
        raw = environ.get(LOG_DIR_ENV, "").strip()
        if not raw:
            return None
        return _path_or_auto(raw, environ)
    if isinstance(persist, bool):
        return _platform_default(environ) if persist else None
    if isinstance(persist, str | os.PathLike):
        raw_path = os.fspath(persist)
        if not isinstance(raw_path, str):
            raise PatterTypeError("persist must be a str path, not bytes")
        if not raw_path.strip():
            raise PatterConfigError(
                "persist='' is empty. Fix: pass persist=True for the default log directory, persist=False "
                "to turn logging off, or persist='/path/to/logs'."
            )
        return _path_or_auto(raw_path.strip(), environ)
    raise PatterTypeError(f"persist must be bool, str, os.PathLike or None, got {type(persist).__name__}")


def _path_or_auto(raw: str, env: Mapping[str, str]) -> Path:
    if raw.lower() == "auto":
        return _platform_default(env)
    return Path(raw).expanduser()


__all__ = ["LOG_DIR_ENV", "default_log_root", "resolve_log_root"]
