"""An agent that runs entirely on this machine: Whisper tiny.en hears, a scripted receptionist answers,
Pico speaks. No AI keys and nothing downloaded (``pip install 'getpatter[local]'``).

    export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
    python examples/local_offline.py           # a quick tunnel gives the public host

Without a carrier account, ``patter demo`` runs the same agent against a simulated phone call.
Swap ``ScriptedLLM.demo()`` for any LLM provider when you have a key.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from getpatter import Agent, LocalSTT, LocalTTS, Patter, ScriptedLLM, SileroVAD, Twilio


def build(*, twilio_base_url: str | None = None, webhook_url: str | None = None) -> tuple[Patter, Agent]:
    host = os.environ.get("WEBHOOK_URL", "") if webhook_url is None else webhook_url
    phone = Patter(
        carrier=Twilio(**({"base_url": twilio_base_url} if twilio_base_url else {})),
        phone_number=os.environ["TWILIO_PHONE_NUMBER"],
        webhook_url=host,
        tunnel=None if host else True,
    )
    agent = phone.agent(
        "You are Ava, the receptionist of {clinic}.",
        stt=LocalSTT(),
        llm=ScriptedLLM.demo(),
        tts=LocalTTS(),
        vad=SileroVAD(),
        first_message="Thanks for calling {clinic}, this is Ava. How can I help?",
        variables={"clinic": "Acme Dental"},
    )
    return phone, agent


async def print_line(data: dict[str, Any]) -> None:
    if data["role"] in ("user", "assistant"):
        print(f"{data['role']:>9}: {data['text']}")


async def run(phone: Patter, agent: Agent, port: int = 8000) -> None:
    await phone.serve(agent, port=port, on_transcript=print_line)


if __name__ == "__main__":
    asyncio.run(run(*build()))
