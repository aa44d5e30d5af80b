"""A pipeline agent: Deepgram hears, OpenAI thinks, ElevenLabs speaks (pick each vendor yourself).

export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
export DEEPGRAM_API_KEY=... OPENAI_API_KEY=sk-... ELEVENLABS_API_KEY=...
export WEBHOOK_URL=calls.example.com   # optional: without it a cloudflared quick tunnel is started
python examples/pipeline_agent.py
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from getpatter import Agent, DeepgramSTT, ElevenLabsTTS, OpenAILLM, Patter, Twilio


def build(
    *,
    twilio_base_url: str | None = None,
    deepgram_base_url: str | None = None,
    openai_base_url: str | None = None,
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
        "You are a concise assistant for Acme Bikes. Answer in one or two short sentences.",
        stt=DeepgramSTT(**({"base_url": deepgram_base_url} if deepgram_base_url else {})),
        llm=OpenAILLM(model="gpt-4o-mini", **({"base_url": openai_base_url} if openai_base_url else {})),
        tts=ElevenLabsTTS(**({"base_url": elevenlabs_base_url} if elevenlabs_base_url else {})),
        first_message="Hi, you've reached Acme Bikes. What can I do for you?",
    )
    return phone, agent


async def print_line(data: dict[str, Any]) -> None:
    if data["role"] in ("user", "assistant"):
        print(f"{data['role']:>9}: {data['text']}")


async def run(phone: Patter, agent: Agent, port: int = 8000) -> None:
    await phone.serve(agent, port=port, on_transcript=print_line)


if __name__ == "__main__":
    asyncio.run(run(*build()))
