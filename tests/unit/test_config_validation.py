"""Rules of getpatter.validation: E.164, bare webhook host (API.md C3), loopback detection."""

from __future__ import annotations

import re

import pytest

from getpatter.errors import PatterConfigError
from getpatter.validation import is_loopback_host, validate_e164, validate_webhook_host


@pytest.mark.parametrize("number", ["+15551234567", "+442071838750", "+1234567", "+123456789012345"])
def test_e164_accepts_valid_numbers(number: str) -> None:
    assert validate_e164(number, "phone_number") == number


@pytest.mark.parametrize(
    "number", ["15551234567", "+0551234567", "+123456", "+1234567890123456", "+1555abc4567", ""]
)
def test_e164_rejects_invalid_numbers_naming_the_parameter(number: str) -> None:
    with pytest.raises(PatterConfigError, match="to_number") as info:
        validate_e164(number, "to_number")
    assert "E.164" in str(info.value)


def test_e164_suggests_compact_form_for_formatted_number() -> None:
    with pytest.raises(PatterConfigError, match=r"phone_number='\+15551234567'"):
        validate_e164("+1 (555) 123-4567", "phone_number")


def test_e164_wrong_type_is_type_error() -> None:
    with pytest.raises(TypeError, match="phone_number"):
        validate_e164(15551234567, "phone_number")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc.ngrok.io", "abc.ngrok.io"),
        ("abc.ngrok.io/", "abc.ngrok.io"),
        ("  calls.example.com  ", "calls.example.com"),
        ("calls.example.com:8443", "calls.example.com:8443"),
        ("203.0.113.7", "203.0.113.7"),
        ("[2001:db8::1]:443", "[2001:db8::1]:443"),
        ("", ""),
    ],
)
def test_webhook_host_accepts_bare_hosts(value: str, expected: str) -> None:
    assert validate_webhook_host(value) == expected


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ("https://abc.ngrok.io", "webhook_url='abc.ngrok.io'"),
        ("https://abc.ngrok.io/", "webhook_url='abc.ngrok.io'"),
        ("wss://abc.ngrok.io:8443/ws", "webhook_url='abc.ngrok.io:8443'"),
        ("http://user:pw@abc.ngrok.io", "webhook_url='abc.ngrok.io'"),
    ],
)
def test_webhook_host_rejects_scheme_and_shows_fix(value: str, fix: str) -> None:
    with pytest.raises(PatterConfigError) as info:
        validate_webhook_host(value)
    message = str(info.value)
    assert "scheme" in message
    assert fix in message


@pytest.mark.parametrize(
    ("value", "fix"),
    [
        ("abc.ngrok.io/webhooks", "webhook_url='abc.ngrok.io'"),
        ("abc.ngrok.io//", "webhook_url='abc.ngrok.io'"),
        ("abc.ngrok.io?x=1", "webhook_url='abc.ngrok.io'"),
    ],
)
def test_webhook_host_rejects_path_and_shows_fix(value: str, fix: str) -> None:
    with pytest.raises(PatterConfigError) as info:
        validate_webhook_host(value)
    assert "path" in str(info.value)
    assert fix in str(info.value)


@pytest.mark.parametrize("value", ["abc ngrok.io", "abc.ngrok.io:99999", "-bad.example.com", "[zz::1]"])
def test_webhook_host_rejects_malformed_hosts(value: str) -> None:
    with pytest.raises(PatterConfigError, match="webhook_url"):
        validate_webhook_host(value)


def test_webhook_host_names_the_given_parameter() -> None:
    with pytest.raises(PatterConfigError, match=re.escape("hostname='abc.ngrok.io'")):
        validate_webhook_host("https://abc.ngrok.io", param="hostname")


def test_webhook_host_wrong_type_is_type_error() -> None:
    with pytest.raises(TypeError, match="webhook_url"):
        validate_webhook_host(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1.2.3",
        "127.0.0.1:8000",
        "::1",
        "[::1]:8000",
        "localhost",
        "LOCALHOST:80",
        "a.localhost",
    ],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host) is True


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1:8000", "example.com", "localhost.com"]
)
def test_non_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host) is False


def test_ipv4_mapped_loopback() -> None:
    assert is_loopback_host("::ffff:127.0.0.1") is True
    assert is_loopback_host("::ffff:8.8.8.8") is False
