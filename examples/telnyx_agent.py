"""The same pipeline agent on Telnyx (Call Control + media streaming, 16 kHz L16 by default).

    export TELNYX_API_KEY=KEY... TELNYX_CONNECTION_ID=... TELNYX_PUBLIC_KEY=...  # required: verifies webhooks
    export TELNYX_PHONE_NUMBER=+15551234567
    export DEEPGRAM_API_KEY=... OPENAI_API_KEY=sk-... ELEVENLABS_API_KEY=...
    export WEBHOOK_URL=calls.example.com   # optional: without it a cloudflared quick tunnel is started
    python examples/telnyx_agent.py

Point the Call Control application's webhook at https://<host>/webhooks/telnyx/voice (printed on start).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from getpatter import Agent, DeepgramSTT, ElevenLabsTTS, OpenAILLM, Patter, Telnyx


def build(
    *,
    telnyx_base_url: str | None = None,
    deepgram_base_url: str | None = None,
    openai_base_url: str | None = None,
    elevenlabs_base_url: str | None = None,
    webhook_url: str | None = None,
) -> tuple[Patter, Agent]:
    host = os.environ.get("WEBHOOK_URL", "") if webhook_url is None else webhook_url
    phone = Patter(
        carrier=Telnyx(**({"base_url": telnyx_base_url} if telnyx_base_url else {})),
        phone_number=os.environ["TELNYX_PHONE_NUMBER"],
        webhook_url=host,
        tunnel=None if host else True,
    )
    agent = phone.agent(
        "You are the after-hours line of Acme Plumbing. Take the caller's name and problem, briefly.",
        stt=DeepgramSTT(**({"base_url": deepgram_base_url} if deepgram_base_url else {})),
        llm=OpenAILLM(**({"base_url": openai_base_url} if openai_base_url else {})),
        tts=ElevenLabsTTS(**({"base_url": elevenlabs_base_url} if elevenlabs_base_url else {})),
        first_message="Acme Plumbing after-hours line. What's the problem?",
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
