"""Persistence root resolution (API.md C.1): explicit persist beats PATTER_LOG_DIR; off by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from getpatter.errors import PatterConfigError
from getpatter.persist_root import default_log_root, resolve_log_root

HOME = Path("/home/u")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return tmp_path


def test_default_root_macos() -> None:
    assert default_log_root("darwin", {}, HOME) == HOME / "Library" / "Application Support" / "patter"


def test_default_root_linux_xdg_and_fallback() -> None:
    assert default_log_root("linux", {"XDG_DATA_HOME": "/data"}, HOME) == Path("/data/patter")
    assert default_log_root("linux", {}, HOME) == HOME / ".local" / "share" / "patter"
    assert default_log_root("linux", {"XDG_DATA_HOME": ""}, HOME) == HOME / ".local" / "share" / "patter"
    # Relative XDG values are invalid per the XDG spec and ignored.
    assert default_log_root("freebsd14", {"XDG_DATA_HOME": "rel"}, HOME) == HOME / ".local/share/patter"


def test_default_root_windows() -> None:
    assert default_log_root("win32", {"LOCALAPPDATA": "/lad"}, HOME) == Path("/lad/patter")
    assert default_log_root("win32", {}, HOME) == HOME / "AppData" / "Local" / "patter"


def test_none_without_env_is_off() -> None:
    assert resolve_log_root(None, env={}) is None
    assert resolve_log_root(None, env={"PATTER_LOG_DIR": "  "}) is None


def test_none_uses_env_path_with_tilde(home: Path) -> None:
    assert resolve_log_root(None, env={"PATTER_LOG_DIR": "~/logs"}) == home / "logs"
    assert resolve_log_root(None, env={"PATTER_LOG_DIR": "/var/log/patter"}) == Path("/var/log/patter")


def test_none_with_env_auto_uses_platform_default(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpatter.persist_root.sys.platform", "linux")
    env = {"PATTER_LOG_DIR": "AUTO", "XDG_DATA_HOME": "/xdg"}
    assert resolve_log_root(None, env=env) == Path("/xdg/patter")


def test_false_ignores_env() -> None:
    assert resolve_log_root(False, env={"PATTER_LOG_DIR": "/var/log/patter"}) is None


def test_true_is_platform_default_even_with_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpatter.persist_root.sys.platform", "linux")
    assert resolve_log_root(True, env={"PATTER_LOG_DIR": "/elsewhere"}) == home / ".local/share/patter"


def test_explicit_path_ignores_env(home: Path) -> None:
    env = {"PATTER_LOG_DIR": "/elsewhere"}
    assert resolve_log_root("~/mine", env=env) == home / "mine"
    assert resolve_log_root(Path("/abs/dir"), env=env) == Path("/abs/dir")


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_LOG_DIR", "/from/os/env")
    assert resolve_log_root(None) == Path("/from/os/env")
    monkeypatch.delenv("PATTER_LOG_DIR")
    assert resolve_log_root(None) is None


def test_empty_string_is_config_error() -> None:
    with pytest.raises(PatterConfigError, match="persist"):
        resolve_log_root("", env={})


@pytest.mark.parametrize("value", [1, 0, 3.5, b"/bytes", ["x"]])
def test_other_types_are_type_errors(value: object) -> None:
    with pytest.raises(TypeError, match="persist"):
        resolve_log_root(value, env={})  # type: ignore[arg-type]
