"""``Patter(...)`` as the Patter docs' quickstarts and configuration page use it.

Where getpatter deliberately differs (no Patter Cloud, bare-host ``webhook_url`` refused rather than
stripped, numbers checked as E.164 up front, call logs off by default) the error or log line says so and
names the one-line change. Exception classes match the builtins Patter users catch.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from getpatter import (
    Patter,
    PatterConfigError,
    PatterError,
    PatterTypeError,
    PatterUnsupportedError,
    Telnyx,
    Twilio,
)

from .conftest import NUMBER


def test_quickstart_client_reads_carrier_credentials_from_env(quickstart_env: dict[str, str]) -> None:
    phone = Patter(carrier=Twilio(), phone_number=NUMBER)  # "TWILIO_* from env"
    assert isinstance(phone.carrier, Twilio)
    assert phone.carrier.account_sid == quickstart_env["TWILIO_ACCOUNT_SID"]
    assert phone.carrier.auth_token == quickstart_env["TWILIO_AUTH_TOKEN"]
    assert quickstart_env["TWILIO_AUTH_TOKEN"] not in repr(phone.carrier)
    assert phone.phone_number == NUMBER


def test_telnyx_carrier_reads_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELNYX_API_KEY", "KEY-secret")
    monkeypatch.setenv("TELNYX_CONNECTION_ID", "conn-1")
    carrier = Telnyx()
    assert (carrier.api_key, carrier.connection_id) == ("KEY-secret", "conn-1")
    assert "KEY-secret" not in repr(carrier)


def test_missing_carrier_credentials_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    with pytest.raises(ValueError, match="Twilio carrier requires account_sid and auth_token"):
        Twilio()


@pytest.mark.parametrize("name", ["api_key", "backend_url"])
def test_cloud_mode_says_it_is_patter_cloud_and_names_the_replacement(name: str) -> None:
    with pytest.raises(NotImplementedError) as info:
        Patter(**{name: "pt_live_123"})
    error = info.value
    assert isinstance(error, PatterUnsupportedError)
    assert isinstance(error, PatterConfigError) and isinstance(error, ValueError)
    assert f"Patter({name}=...) is Patter Cloud, which getpatter does not use" in str(error)
    assert "pass carrier=..., phone_number=... instead" in str(error)


def test_mode_cloud_refused_mode_local_accepted() -> None:
    with pytest.raises(PatterUnsupportedError, match=r"mode='cloud'.*always runs locally.*drop mode="):
        Patter(mode="cloud")
    phone = Patter(carrier=Twilio(), phone_number=NUMBER, mode="local")
    assert phone.phone_number == NUMBER


def test_telemetry_off_accepted_on_refused() -> None:
    assert Patter(telemetry=False).carrier is None
    assert Patter(telemetry=None).carrier is None
    with pytest.raises(PatterConfigError, match="sends no usage telemetry"):
        Patter(telemetry=True)


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("twilio_sid", "carrier=Twilio(account_sid=..., auth_token=...)"),
        ("twilio_token", "carrier=Twilio(account_sid=..., auth_token=...)"),
        ("telnyx_key", "carrier=Telnyx(api_key=..., connection_id=...)"),
        ("openai_key", "OpenAIRealtime(api_key=...)"),
        ("elevenlabs_key", "ElevenLabsTTS(api_key=...)"),
        ("deepgram_key", "DeepgramSTT(api_key=...)"),
    ],
)
def test_pre_05_credentials_name_where_they_go(name: str, replacement: str) -> None:
    with pytest.raises(TypeError) as info:
        Patter(**{name: "x"})
    assert isinstance(info.value, PatterTypeError)
    assert "pre-0.5 Patter form" in str(info.value)
    assert replacement in str(info.value)


def test_unknown_keyword_lists_the_parameters() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'webhook'.*carrier, phone_number"):
        Patter(webhook="a.example.com")


@pytest.mark.parametrize("url", ["https://abc.ngrok.io", "https://abc.ngrok.io/", "abc.ngrok.io/webhooks"])
def test_webhook_url_with_scheme_or_path_is_refused_with_the_bare_host(url: str) -> None:
    with pytest.raises(ValueError) as info:
        Patter(carrier=Twilio(), phone_number=NUMBER, webhook_url=url)
    message = str(info.value)
    assert "The Patter SDK stripped a scheme silently" in message
    assert "Fix: webhook_url='abc.ngrok.io'" in message


def test_bare_host_with_trailing_slash_is_fine() -> None:
    assert (
        Patter(carrier=Twilio(), phone_number=NUMBER, webhook_url="abc.ngrok.io/").webhook_host
        == "abc.ngrok.io"
    )


@pytest.mark.parametrize(("number", "fix"), [("+1 555-000-1234", "'+15550001234'"), ("5550001234", "E.164")])
def test_non_e164_number_is_a_value_error_naming_the_fix(number: str, fix: str) -> None:
    with pytest.raises(ValueError, match=r"is not an E.164 phone number") as info:
        Patter(carrier=Twilio(), phone_number=number)
    assert fix in str(info.value)


def test_wrong_types_are_type_errors_and_patter_errors() -> None:
    with pytest.raises(TypeError) as info:
        Patter(carrier="twilio", phone_number=NUMBER)  # type: ignore[arg-type]
    assert isinstance(info.value, PatterError)
    with pytest.raises(TypeError):
        Patter(carrier=Twilio(), phone_number=15550001234)  # type: ignore[arg-type]


def test_persistence_is_off_by_default_and_the_server_says_how_to_turn_it_on(
    phone: Patter, caplog: pytest.LogCaptureFixture
) -> None:
    assert phone.log_root is None
    agent = phone.agent(system_prompt="You are helpful.")
    with caplog.at_level(logging.INFO, logger="getpatter"):
        phone.asgi_app(agent)
    notes = [r.getMessage() for r in caplog.records if "call logs are off" in r.getMessage()]
    assert notes and "Patter(persist=True) or PATTER_LOG_DIR=auto" in notes[0]


def test_persist_true_and_env_turn_logs_on(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Patter(persist=str(tmp_path)).log_root == tmp_path
    monkeypatch.setenv("PATTER_LOG_DIR", str(tmp_path / "env"))
    assert Patter().log_root == tmp_path / "env"
    assert Patter(persist=False).log_root is None


def test_value_errors_are_catchable_as_patter_users_do() -> None:
    caught: list[BaseException] = []
    try:
        Patter(carrier=Twilio(), phone_number="not a number")
    except ValueError as exc:  # what Patter's docs and tests catch
        caught.append(exc)
    assert len(caught) == 1 and isinstance(caught[0], PatterConfigError)
