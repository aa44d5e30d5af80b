"""Shared setup for the Patter-compatibility suite.

These tests are written from the existing Patter SDK's *public documentation* (quickstarts, the
configuration page, the tools/guardrails/agents/provider pages): each one does what a Patter user's code
does and checks that it either works the same here or fails with a message that says what to change.
"""

from __future__ import annotations

import pytest

from getpatter import Patter, Twilio

NUMBER = "+15550001234"

#: Env vars the documented quickstarts rely on ("TWILIO_* from env", "OPENAI_API_KEY from env", ...).
QUICKSTART_ENV = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-token-from-env",
    "OPENAI_API_KEY": "sk-openai-from-env",
    "DEEPGRAM_API_KEY": "dg-from-env",
    "ELEVENLABS_API_KEY": "el-from-env",
    "ANTHROPIC_API_KEY": "sk-ant-from-env",
}


@pytest.fixture(autouse=True)
def quickstart_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in ("PATTER_LOG_DIR", "PATTER_LOG_REDACT_PHONE", "PATTER_BIND_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in QUICKSTART_ENV.items():
        monkeypatch.setenv(name, value)
    return QUICKSTART_ENV


@pytest.fixture
def phone() -> Patter:
    """The documented minimal client: ``Patter(carrier=Twilio(), phone_number=...)``, TWILIO_* from env."""
    return Patter(carrier=Twilio(), phone_number=NUMBER, webhook_url="agent.example.com")
