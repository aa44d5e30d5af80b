"""Two instances of one phone agent on one machine, sharing a Redis: they act as one phone system.

    redis-server --port 6379 &
    export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
    export OPENAI_API_KEY=sk-... WEBHOOK_URL=calls.example.com DASHBOARD_TOKEN=choose-a-long-secret
    export PATTER_REDIS_URL=redis://127.0.0.1:6379/0
    python examples/two_instances.py 8001 &
    python examples/two_instances.py 8002 &

Put a load balancer for ``calls.example.com`` in front of ``127.0.0.1:8001`` and ``127.0.0.1:8002`` (README,
"Several instances"). Type a number (``+15557654321``) on either instance's standard input to call it
from there: the carrier's callbacks may reach the other instance, the call's media too, and the result is
still printed by the instance that placed the call. Either dashboard shows every call of both.

``build()`` takes optional ``base_url`` overrides (tests/fleet runs two of these against local fakes).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

from getpatter import Agent, OpenAIRealtime, Patter, Twilio
from getpatter.call.results import MachineDetectionResult

VOICEMAIL = "Hi, this is Sam from Acme Dental. Please call us back at your convenience."


def build(*, twilio_base_url: str | None = None, openai_base_url: str | None = None) -> tuple[Patter, Agent]:
    phone = Patter(
        carrier=Twilio(**({"base_url": twilio_base_url} if twilio_base_url else {})),
        phone_number=os.environ["TWILIO_PHONE_NUMBER"],
        webhook_url=os.environ["WEBHOOK_URL"],  # the load balancer's host: the same for every instance
        # redis_url= is read from PATTER_REDIS_URL
    )
    agent = phone.agent(
        "You are Sam from Acme Dental. Keep answers short: this is a phone call.",
        engine=OpenAIRealtime(**({"base_url": openai_base_url} if openai_base_url else {})),
        first_message="Hi, this is Sam from Acme Dental.",
    )
    return phone, agent


async def call_end(data: dict[str, Any]) -> None:
    print(f"Call {data['call_id']} ran on this instance ({os.getpid()})", flush=True)


async def machine(result: MachineDetectionResult) -> None:
    print(f"Call {result.call_id} answered by a {result.classification}", flush=True)


async def place_calls(phone: Patter) -> None:
    """Every line on standard input is a number to call from this instance."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:  # a daemon thread: a console read must not hold up the exit
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)

    threading.Thread(target=read, daemon=True).start()
    while True:
        number = (await lines.get()).strip()
        if not number:
            continue
        result = await phone.call(number, on_machine_detection=machine, wait=True)
        said = len(result.transcript)
        print(f"Call {result.call_id} to {number}: {result.outcome}, {said} transcript lines", flush=True)


async def run(phone: Patter, agent: Agent, port: int) -> None:
    serving = asyncio.create_task(
        phone.serve(
            agent,
            port=port,
            on_call_end=call_end,
            voicemail_message=VOICEMAIL,
            dashboard_token=os.environ.get("DASHBOARD_TOKEN", ""),
        )
    )
    await phone.ready
    calling = asyncio.create_task(place_calls(phone))
    try:
        await serving
    finally:
        calling.cancel()


if __name__ == "__main__":
    phone, agent = build(
        twilio_base_url=os.environ.get("TWILIO_BASE_URL"), openai_base_url=os.environ.get("OPENAI_BASE_URL")
    )
    asyncio.run(run(phone, agent, int(sys.argv[1]) if len(sys.argv) > 1 else 8000))
