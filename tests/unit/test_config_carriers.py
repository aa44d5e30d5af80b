"""Carrier configs: env fallback, required credentials, types, codec choice, secrets out of repr."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import pytest

from getpatter.carriers.telnyx import Carrier as TelnyxCarrier
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import PatterConfigError

CARRIER_ENV = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TELNYX_API_KEY",
    "TELNYX_CONNECTION_ID",
    "TELNYX_PUBLIC_KEY",
)
PUBLIC_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CARRIER_ENV:
        monkeypatch.delenv(name, raising=False)


def test_twilio_explicit_credentials_and_kind() -> None:
    carrier = Twilio(account_sid="AC123", auth_token="tok")
    assert (carrier.account_sid, carrier.auth_token, carrier.kind) == ("AC123", "tok", "twilio")


def test_twilio_env_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACenv")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "envtok")
    carrier = Twilio()
    assert (carrier.account_sid, carrier.auth_token) == ("ACenv", "envtok")


def test_twilio_explicit_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACenv")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "envtok")
    assert Twilio(account_sid="ACarg").account_sid == "ACarg"


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({}, ["account_sid", "TWILIO_ACCOUNT_SID", "auth_token", "TWILIO_AUTH_TOKEN"]),
        ({"account_sid": "AC1"}, ["auth_token", "TWILIO_AUTH_TOKEN"]),
        ({"auth_token": "t"}, ["account_sid", "TWILIO_ACCOUNT_SID"]),
    ],
)
def test_twilio_missing_credentials(kwargs: dict[str, str], names: list[str]) -> None:
    with pytest.raises(PatterConfigError) as info:
        Twilio(**kwargs)
    message = str(info.value).split("missing:", 1)[1]
    for name in names:
        assert name in message
    assert "Fix:" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_twilio_wrong_type() -> None:
    with pytest.raises(TypeError, match="auth_token"):
        Twilio(account_sid="AC1", auth_token=123)  # type: ignore[arg-type]


def test_twilio_repr_hides_token_and_is_frozen() -> None:
    carrier = Twilio(account_sid="AC1", auth_token="s3cr3t-token")
    assert "s3cr3t-token" not in repr(carrier)
    assert "s3cr3t-token" not in str(carrier)
    with pytest.raises(dataclasses.FrozenInstanceError):
        carrier.auth_token = "x"  # type: ignore[misc]


def test_telnyx_defaults_kind_and_export() -> None:
    carrier = Telnyx(api_key="KEY1", connection_id="conn")
    assert TelnyxCarrier is Telnyx
    assert carrier.kind == "telnyx"
    assert (carrier.stream_codec, carrier.sample_rate) == ("L16", 16000)
    assert carrier.public_key == ""
    assert carrier.strict_signatures is False


def test_telnyx_env_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELNYX_API_KEY", "KEYenv")
    monkeypatch.setenv("TELNYX_CONNECTION_ID", "connenv")
    monkeypatch.setenv("TELNYX_PUBLIC_KEY", PUBLIC_KEY)
    carrier = Telnyx()
    assert (carrier.api_key, carrier.connection_id, carrier.public_key) == ("KEYenv", "connenv", PUBLIC_KEY)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({}, ["api_key", "TELNYX_API_KEY", "connection_id", "TELNYX_CONNECTION_ID"]),
        ({"api_key": "K"}, ["connection_id", "TELNYX_CONNECTION_ID"]),
        ({"connection_id": "c"}, ["api_key", "TELNYX_API_KEY"]),
    ],
)
def test_telnyx_missing_credentials(kwargs: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(PatterConfigError) as info:
        Telnyx(**kwargs)
    missing = str(info.value).split("missing:", 1)[1]
    for name in names:
        assert name in missing
    assert "Fix:" in str(info.value)


def test_telnyx_pcmu_codec_and_case_insensitive() -> None:
    carrier = Telnyx(api_key="K", connection_id="c", stream_codec="pcmu")
    assert (carrier.stream_codec, carrier.sample_rate) == ("PCMU", 8000)


def test_telnyx_unknown_codec() -> None:
    with pytest.raises(PatterConfigError, match="stream_codec='OPUS'") as info:
        Telnyx(api_key="K", connection_id="c", stream_codec="OPUS")
    assert "L16" in str(info.value) and "PCMU" in str(info.value)


def test_telnyx_wrong_types() -> None:
    with pytest.raises(TypeError, match="api_key"):
        Telnyx(api_key=b"K", connection_id="c")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="strict_signatures"):
        Telnyx(api_key="K", connection_id="c", strict_signatures="yes")  # type: ignore[arg-type]


def test_telnyx_bad_public_key() -> None:
    with pytest.raises(PatterConfigError, match="TELNYX_PUBLIC_KEY"):
        Telnyx(api_key="K", connection_id="c", public_key="not-base64!")
    short = base64.b64encode(b"x" * 16).decode()
    with pytest.raises(PatterConfigError, match="32-byte"):
        Telnyx(api_key="K", connection_id="c", public_key=short)


def test_telnyx_strict_signatures_needs_public_key() -> None:
    with pytest.raises(PatterConfigError, match="public_key"):
        Telnyx(api_key="K", connection_id="c", strict_signatures=True)
    carrier = Telnyx(api_key="K", connection_id="c", public_key=PUBLIC_KEY, strict_signatures=True)
    assert carrier.strict_signatures is True


def test_telnyx_repr_hides_api_key() -> None:
    carrier = Telnyx(api_key="KEYsecret-value", connection_id="conn")
    assert "KEYsecret-value" not in repr(carrier)
    assert "conn" in repr(carrier)
