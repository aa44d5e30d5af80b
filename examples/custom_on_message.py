"""Your own reply logic instead of an LLM: ``on_message`` gets each caller turn and returns the reply.

    export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
    export DEEPGRAM_API_KEY=... ELEVENLABS_API_KEY=...
    python examples/custom_on_message.py

With a second parameter the handler also gets the live call (``CallControl``): ``await call.hangup()``
(after the reply has been heard) or ``await call.transfer("+1...")``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from getpatter import Agent, CallControl, DeepgramSTT, ElevenLabsTTS, Patter, Twilio

ANSWERS = {
    "hour": "We are open nine to five, Monday to Friday.",
    "price": "A standard cleaning is eighty dollars.",
    "address": "We are at 12 Main Street.",
}


async def answer(event: dict[str, Any], call: CallControl) -> str:
    text = event["text"].lower()
    if "bye" in text:
        await call.hangup()
        return "Thanks for calling. Goodbye!"
    if "person" in text or "human" in text:
        await call.transfer("+15550009999")
        return "Let me put you through."
    for keyword, reply in ANSWERS.items():
        if keyword in text:
            return reply
    return "I can tell you our hours, prices or address."


def build(
    *,
    twilio_base_url: str | None = None,
    deepgram_base_url: str | None = None,
    elevenlabs_base_url: str | None = None,
    webhook_url: str | None = None,
) -> tuple[Patter, Agent]:
    host = os.environ.get("WEBHOOK_URL", "") if webhook_url is None else webhook_url
    phone = Patter(
        carrier=Twilio(**({"base_url": twilio_base_url} if twilio_base_url else {})),
        phone_number=os.environ["TWILIO_PHONE_NUMBER"],
        webhook_url=host,
        tunnel=None if host else True,
    )
    agent = phone.agent(
        "unused: on_message writes the replies",
        stt=DeepgramSTT(**({"base_url": deepgram_base_url} if deepgram_base_url else {})),
        tts=ElevenLabsTTS(**({"base_url": elevenlabs_base_url} if elevenlabs_base_url else {})),
        first_message="Acme Dental, how can I help?",
    )
    return phone, agent


async def print_call(data: dict[str, Any]) -> None:
    print(f"Call {data['call_id']} ended ({data.get('reason', '')})")
    for line in data["transcript"]:
        print(f"  {line['role']}: {line['text']}")


async def run(phone: Patter, agent: Agent, port: int = 8000) -> None:
    await phone.serve(agent, port=port, on_message=answer, on_call_end=print_call)


if __name__ == "__main__":
    asyncio.run(run(*build()))
