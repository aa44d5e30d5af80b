"""Tools: the model looks things up mid-call; ``transfer_call``/``end_call`` are added automatically.

    export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
    export DEEPGRAM_API_KEY=... OPENAI_API_KEY=sk-... ELEVENLABS_API_KEY=...
    python examples/tools_agent.py

The JSON schema of each tool comes from the type hints and the docstring's ``Args:`` section.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from getpatter import Agent, DeepgramSTT, ElevenLabsTTS, OpenAILLM, Patter, Twilio, tool

ORDERS = {"42": "shipped on Monday", "43": "being packed"}


@tool
def order_status(order_id: str) -> dict[str, str]:
    """Look up where an order is.

    Args:
        order_id: The order number the caller gives.
    """
    return {"order_id": order_id, "status": ORDERS.get(order_id, "not found")}


@tool
async def opening_hours(day: str = "today") -> str:
    """Opening hours of the shop.

    Args:
        day: The day the caller asks about.
    """
    return "9 am to 6 pm" if day.lower() not in ("sunday",) else "closed"


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
        "You answer order questions for Acme Bikes. Use order_status for orders and opening_hours for "
        "hours. If the caller asks for a person, transfer them to +15550009999.",
        stt=DeepgramSTT(**({"base_url": deepgram_base_url} if deepgram_base_url else {})),
        llm=OpenAILLM(**({"base_url": openai_base_url} if openai_base_url else {})),
        tts=ElevenLabsTTS(**({"base_url": elevenlabs_base_url} if elevenlabs_base_url else {})),
        tools=[order_status, opening_hours],
        first_message="Acme Bikes orders desk, how can I help?",
    )
    return phone, agent


async def print_tool(data: dict[str, Any]) -> None:
    if data["role"] == "tool" and data["tool_result"] is not None:
        print(f"tool {data['tool_name']}({data['tool_args']}) -> {data['tool_result']}")
    elif data["role"] != "tool":
        print(f"{data['role']:>9}: {data['text']}")


async def run(phone: Patter, agent: Agent, port: int = 8000) -> None:
    await phone.serve(agent, port=port, on_transcript=print_tool)


if __name__ == "__main__":
    asyncio.run(run(*build()))
