"""Answer inbound calls with OpenAI Realtime (speech to speech, lowest latency).

    export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
    export OPENAI_API_KEY=sk-...
    export WEBHOOK_URL=calls.example.com   # optional: without it a cloudflared quick tunnel is started
    python examples/realtime_inbound.py

getpatter points the Twilio number at this server on start, then answers every call.
``build()`` takes optional ``base_url`` overrides (the example tests run it against local fakes).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from getpatter import Agent, OpenAIRealtime, Patter, Twilio


def build(
    *,
    twilio_base_url: str | None = None,
    openai_base_url: str | None = None,
    webhook_url: str | None = None,
) -> tuple[Patter, Agent]:
    host = os.environ.get("WEBHOOK_URL", "") if webhook_url is None else webhook_url
    phone = Patter(
        carrier=Twilio(**({"base_url": twilio_base_url} if twilio_base_url else {})),
        phone_number=os.environ["TWILIO_PHONE_NUMBER"],
        webhook_url=host,
        tunnel=None if host else True,  # no public host of your own: a quick tunnel gives one
    )
    agent = phone.agent(
        "You are Sam, the friendly receptionist of Acme Dental. Keep answers short: this is a phone call.",
        engine=OpenAIRealtime(voice="alloy", **({"base_url": openai_base_url} if openai_base_url else {})),
        first_message="Thanks for calling Acme Dental, this is Sam. How can I help?",
    )
    return phone, agent


async def print_call(data: dict[str, Any]) -> None:
    print(f"Call {data['call_id']} ended")
    for line in data["transcript"]:
        print(f"  {line['role']}: {line['text']}")


async def run(phone: Patter, agent: Agent, port: int = 8000) -> None:
    await phone.serve(agent, port=port, on_call_end=print_call)


if __name__ == "__main__":
    asyncio.run(run(*build()))
