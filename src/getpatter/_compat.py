"""Keyword arguments of the existing Patter SDK's ``Patter(...)`` that getpatter does not take.

Code written for Patter arrives with them (``api_key=`` for Patter Cloud, the pre-0.5 ``twilio_sid=`` /
``openai_key=`` form, ``mode=``, ``telemetry=``). Python's own "unexpected keyword argument" says
nothing useful, so each one is refused here with the reason and the one-line replacement
(docs/migrating-from-patter.md lists them all). The few that mean exactly what getpatter already does
(``mode="local"``, ``telemetry=False``) are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from getpatter.errors import PatterConfigError, PatterTypeError, PatterUnsupportedError

#: What ``Patter(...)`` takes, for the "unexpected keyword" message.
CLIENT_PARAMS: Final = ("carrier", "phone_number", "webhook_url", "tunnel", "pricing", "persist")

_CLOUD = (
    "is Patter Cloud, which getpatter does not use: pass carrier=..., phone_number=... instead "
    "(e.g. Patter(carrier=Twilio(), phone_number='+15550001234', webhook_url='agent.example.com'))"
)

#: Pre-0.5 Patter credentials passed to the client, and where they go now.
_LEGACY_KEYS: Final[Mapping[str, str]] = {
    "twilio_sid": "carrier=Twilio(account_sid=..., auth_token=...) (or set TWILIO_ACCOUNT_SID)",
    "twilio_token": "carrier=Twilio(account_sid=..., auth_token=...) (or set TWILIO_AUTH_TOKEN)",
    "telnyx_key": "carrier=Telnyx(api_key=..., connection_id=...) (or set TELNYX_API_KEY)",
    "telnyx_connection_id": "carrier=Telnyx(api_key=..., connection_id=...) (or set TELNYX_CONNECTION_ID)",
    "telnyx_public_key": "carrier=Telnyx(..., public_key=...) (or set TELNYX_PUBLIC_KEY)",
    "openai_key": "the provider: phone.agent(engine=OpenAIRealtime(api_key=...)) or OpenAILLM(api_key=...) "
    "(or set OPENAI_API_KEY)",
    "elevenlabs_key": "the provider: ElevenLabsTTS(api_key=...) or ElevenLabsConvAI(api_key=...) "
    "(or set ELEVENLABS_API_KEY)",
    "deepgram_key": "the provider: DeepgramSTT(api_key=...) (or set DEEPGRAM_API_KEY)",
}


def reject_client_kwargs(kwargs: Mapping[str, object]) -> None:
    """Refuse every Patter-only keyword of ``Patter(...)`` with the reason and the replacement."""
    for name, value in kwargs.items():
        if name in ("api_key", "backend_url"):
            raise PatterUnsupportedError(f"Patter({name}=...) {_CLOUD}.")
        if name == "mode":
            if value == "local":
                continue  # the only mode getpatter has
            raise PatterUnsupportedError(
                f"Patter(mode={value!r}): getpatter always runs locally (mode='local'); any other mode "
                f"{_CLOUD}. Fix: drop mode=."
            )
        if name == "telemetry":
            if value is None or value is False:
                continue  # getpatter never sends usage telemetry, so "off" is what it does anyway
            raise PatterConfigError(
                f"Patter(telemetry={value!r}): getpatter sends no usage telemetry. Fix: drop telemetry=."
            )
        if name in _LEGACY_KEYS:
            raise PatterTypeError(
                f"Patter({name}=...) is the pre-0.5 Patter form; getpatter takes credentials on the carrier "
                f"and provider objects. Fix: pass {_LEGACY_KEYS[name]}."
            )
        raise PatterTypeError(
            f"Patter() got an unexpected keyword argument {name!r}. It takes: {', '.join(CLIENT_PARAMS)}."
        )


__all__ = ["CLIENT_PARAMS", "reject_client_kwargs"]
