"""Patter(...) constructor rules (API.md A.2): carrier, number, webhook_url, tunnel, pricing, persist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import PatterConfigError
from getpatter.patter import Patter
from getpatter.settings import Settings
from getpatter.tunnels.config import CloudflareTunnel, Ngrok, Static

NUMBER = "+15551234567"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PATTER_LOG_DIR", "PATTER_LOG_REDACT_PHONE", "PATTER_BIND_HOST", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def twilio() -> Twilio:
    return Twilio(account_sid="AC123", auth_token="very-secret-token")


def test_minimal_construction_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATTER_DASHBOARD_NOTIFY", raising=False)  # tests/conftest.py turns it off
    phone = Patter()
    assert phone.carrier is None
    assert (phone.phone_number, phone.webhook_host) == ("", "")
    assert phone.tunnel is None
    assert phone.log_root is None
    assert phone.settings == Settings()
    assert phone.pricing["twilio"]["price"] == 0.0085


def test_carrier_and_number_stored(twilio: Twilio) -> None:
    phone = Patter(carrier=twilio, phone_number=NUMBER, webhook_url="abc.ngrok.io")
    assert phone.carrier is twilio
    assert phone.phone_number == NUMBER
    assert phone.webhook_host == "abc.ngrok.io"


def test_telnyx_carrier_accepted() -> None:
    carrier = Telnyx(api_key="KEY", connection_id="c")
    assert Patter(carrier=carrier, phone_number=NUMBER).carrier is carrier


@pytest.mark.parametrize("carrier", ["twilio", {"account_sid": "AC"}, object()])
def test_wrong_carrier_type(carrier: Any) -> None:
    with pytest.raises(TypeError, match="carrier"):
        Patter(carrier=carrier, phone_number=NUMBER)


def test_carrier_requires_phone_number(twilio: Twilio) -> None:
    with pytest.raises(PatterConfigError, match="phone_number") as info:
        Patter(carrier=twilio)
    assert "+15551234567" in str(info.value)


def test_phone_number_must_be_e164(twilio: Twilio) -> None:
    with pytest.raises(PatterConfigError, match="phone_number"):
        Patter(carrier=twilio, phone_number="5551234567")


def test_phone_number_wrong_type(twilio: Twilio) -> None:
    with pytest.raises(TypeError, match="phone_number"):
        Patter(carrier=twilio, phone_number=15551234567)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "problem"), [("https://abc.ngrok.io", "scheme"), ("abc.ngrok.io/webhooks", "path")]
)
def test_webhook_url_scheme_or_path_rejected_with_fix(twilio: Twilio, url: str, problem: str) -> None:
    with pytest.raises(PatterConfigError, match=problem) as info:
        Patter(carrier=twilio, phone_number=NUMBER, webhook_url=url)
    assert "webhook_url='abc.ngrok.io'" in str(info.value)


def test_webhook_url_trailing_slash_stripped(twilio: Twilio) -> None:
    assert (
        Patter(carrier=twilio, phone_number=NUMBER, webhook_url="abc.ngrok.io/").webhook_host
        == "abc.ngrok.io"
    )


def test_tunnel_true_is_cloudflare_and_false_none_are_off() -> None:
    assert Patter(tunnel=True).tunnel == CloudflareTunnel()
    assert Patter(tunnel=False).tunnel is None
    assert Patter(tunnel=None).tunnel is None


def test_cloudflare_with_explicit_webhook_url_conflicts() -> None:
    with pytest.raises(PatterConfigError, match="webhook_url"):
        Patter(webhook_url="abc.ngrok.io", tunnel=True)
    with pytest.raises(PatterConfigError, match="CloudflareTunnel"):
        Patter(webhook_url="abc.ngrok.io", tunnel=CloudflareTunnel())


@pytest.mark.parametrize("tunnel", [Static("calls.example.com"), Ngrok(hostname="calls.example.com")])
def test_static_and_ngrok_hostname_becomes_webhook_host(tunnel: Static | Ngrok) -> None:
    phone = Patter(tunnel=tunnel)
    assert phone.webhook_host == "calls.example.com"
    assert phone.tunnel is tunnel
    # The same host given twice is fine (case-insensitive).
    assert Patter(webhook_url="CALLS.example.com", tunnel=tunnel).webhook_host == "calls.example.com"


def test_static_hostname_conflicting_with_webhook_url() -> None:
    with pytest.raises(PatterConfigError, match="differs") as info:
        Patter(webhook_url="other.example.com", tunnel=Static("calls.example.com"))
    assert "other.example.com" in str(info.value) and "calls.example.com" in str(info.value)


@pytest.mark.parametrize("tunnel", ["cloudflare", 1, object()])
def test_other_tunnel_types(tunnel: Any) -> None:
    with pytest.raises(TypeError, match="tunnel"):
        Patter(tunnel=tunnel)


def test_unknown_and_cloud_kwargs_rejected() -> None:
    # Cloud mode is refused as Patter 0.7 did (NotImplementedError), naming the local replacement.
    with pytest.raises(NotImplementedError, match="Patter Cloud"):
        Patter(api_key="pk_123")
    with pytest.raises(NotImplementedError, match="Patter Cloud"):
        Patter(backend_url="https://x")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Patter(colour="blue")


def test_pricing_merged_and_read_only() -> None:
    phone = Patter(pricing={"deepgram": {"price": 0.005}})
    assert phone.pricing["deepgram"]["price"] == 0.005
    assert phone.pricing["deepgram"]["unit"] == "minute"
    with pytest.raises(TypeError):
        phone.pricing["deepgram"] = {}  # type: ignore[index]


def test_bad_pricing_is_config_error() -> None:
    with pytest.raises(PatterConfigError, match="pricing"):
        Patter(pricing=["deepgram"])  # type: ignore[arg-type]


def test_persist_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATTER_LOG_DIR", str(tmp_path / "env"))
    assert Patter().log_root == tmp_path / "env"
    assert Patter(persist=False).log_root is None
    assert Patter(persist=str(tmp_path / "mine")).log_root == tmp_path / "mine"


def test_settings_read_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_LOG_REDACT_PHONE", "full")
    monkeypatch.setenv("PATTER_BIND_HOST", "0.0.0.0")
    settings = Patter().settings
    assert (settings.redact_phone, settings.bind_host) == ("full", "0.0.0.0")


def test_properties_are_read_only(twilio: Twilio) -> None:
    phone = Patter(carrier=twilio, phone_number=NUMBER)
    for name in ("carrier", "phone_number", "webhook_host", "tunnel", "pricing", "log_root", "settings"):
        with pytest.raises(AttributeError):
            setattr(phone, name, None)


def test_repr_has_no_secrets(twilio: Twilio) -> None:
    telnyx = Telnyx(api_key="KEY-super-secret", connection_id="c")
    for carrier in (twilio, telnyx):
        text = repr(Patter(carrier=carrier, phone_number=NUMBER, webhook_url="abc.ngrok.io"))
        assert "very-secret-token" not in text
        assert "KEY-super-secret" not in text
        assert "abc.ngrok.io" in text and NUMBER in text


def test_options_the_agent_mode_would_never_read_are_refused() -> None:
    from getpatter.call.hooks import PipelineHooks
    from getpatter.engines.openai_realtime import OpenAIRealtime
    from getpatter.stt.deepgram import DeepgramSTT
    from getpatter.tts.elevenlabs import ElevenLabsTTS

    phone = Patter()
    engine = OpenAIRealtime(api_key="sk-x")
    for kwargs in (
        {"hooks": PipelineHooks()},
        {"text_transforms": [str.strip]},
        {"audio_filter": bytes},
        {"barge_in_threshold_ms": 500},
        {"aggressive_first_flush": True},
    ):
        with pytest.raises(PatterConfigError, match=f"{next(iter(kwargs))}= only apply to pipeline mode"):
            phone.agent("x", engine=engine, **kwargs)
    voice = {"stt": DeepgramSTT(api_key="k"), "tts": ElevenLabsTTS(api_key="k")}
    with pytest.raises(PatterConfigError, match="voice= set the speech-to-speech engine"):
        phone.agent("x", voice="alloy", **voice)
    with pytest.raises(PatterConfigError, match=r"voice= and model= .*OpenAILLM\(model=\.\.\.\)"):
        phone.agent("x", voice="alloy", model="gpt-4o", **voice)
    assert phone.agent("x", engine=engine, voice="ash").voice == "ash"  # read by the engine
