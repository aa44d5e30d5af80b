"""Env-driven Settings and phone-number redaction (API.md A.19, C2, C.5)."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from getpatter.errors import PatterConfigError
from getpatter.settings import Settings, redact_phone_number


def test_defaults_from_empty_env() -> None:
    settings = Settings.from_env({})
    assert settings == Settings(
        log_retention_days=30, redact_phone="mask", dashboard_notify=True, bind_host="127.0.0.1"
    )


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().bind_host = "0.0.0.0"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "days"),
    [("7", 7), (" 90 ", 90), ("0", 0), ("-5", 0), ("abc", 30), ("7.5", 30), ("", 30)],
)
def test_retention_days(raw: str, days: int) -> None:
    assert Settings.from_env({"PATTER_LOG_RETENTION_DAYS": raw}).log_retention_days == days


@pytest.mark.parametrize(
    ("raw", "mode"),
    [
        ("0", "full"),
        ("false", "full"),
        ("FALSE", "full"),
        ("full", "full"),
        ("Full", "full"),
        ("1", "mask"),
        ("true", "mask"),
        ("True", "mask"),
        ("mask", "mask"),
        ("MASK", "mask"),
        ("hash_only", "hash_only"),
        ("HASH_ONLY", "hash_only"),
        (" hash_only ", "hash_only"),
        ("garbage", "mask"),
        ("", "mask"),
    ],
)
def test_redact_phone_spellings(raw: str, mode: str) -> None:
    assert Settings.from_env({"PATTER_LOG_REDACT_PHONE": raw}).redact_phone == mode


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "No", "off", "OFF", " off "])
def test_dashboard_notify_disabled(raw: str) -> None:
    assert Settings.from_env({"PATTER_DASHBOARD_NOTIFY": raw}).dashboard_notify is False


@pytest.mark.parametrize("raw", ["1", "true", "yes", "on", "", "whatever"])
def test_dashboard_notify_enabled(raw: str) -> None:
    assert Settings.from_env({"PATTER_DASHBOARD_NOTIFY": raw}).dashboard_notify is True


def test_bind_host() -> None:
    assert Settings.from_env({"PATTER_BIND_HOST": "0.0.0.0"}).bind_host == "0.0.0.0"
    assert Settings.from_env({"PATTER_BIND_HOST": "  "}).bind_host == "127.0.0.1"


def test_from_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_LOG_RETENTION_DAYS", "3")
    assert Settings.from_env().log_retention_days == 3


def test_redact_mask() -> None:
    assert redact_phone_number("+15551234567", "mask") == "***4567"
    assert redact_phone_number("1234", "mask") == "***"
    assert redact_phone_number("12", "mask") == "***"
    assert redact_phone_number("12345", "mask") == "***2345"


def test_redact_full_and_empty() -> None:
    assert redact_phone_number("+15551234567", "full") == "+15551234567"
    for mode in ("mask", "full", "hash_only"):
        assert redact_phone_number("", mode) == ""


def test_redact_hash_only() -> None:
    expected = "sha256:" + hashlib.sha256(b"+15551234567").hexdigest()[:16]
    result = redact_phone_number("+15551234567", "hash_only")
    assert result == expected
    assert len(result) == len("sha256:") + 16
    assert redact_phone_number("+15551234568", "hash_only") != result


def test_redact_unknown_mode() -> None:
    with pytest.raises(PatterConfigError, match="mode"):
        redact_phone_number("+15551234567", "nope")  # type: ignore[arg-type]
