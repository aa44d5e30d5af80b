"""Keep a log of every call on disk, and read it back.

    export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
    export DEEPGRAM_API_KEY=... OPENAI_API_KEY=sk-... ELEVENLABS_API_KEY=...
    python examples/persistence.py             # logs under ./call-logs
    patter logs --root ./call-logs             # list them later (add a call id to show one)

Layout: ``<root>/calls/YYYY/MM/DD/<call_id>/metadata.json`` (phone numbers masked by default, see
``PATTER_LOG_REDACT_PHONE``), ``transcript.jsonl`` (one row per turn) and ``events.jsonl``.
Old days are swept after ``PATTER_LOG_RETENTION_DAYS`` (30).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from getpatter import Agent, DeepgramSTT, ElevenLabsTTS, OpenAILLM, Patter, Twilio
from getpatter.dashboard.persistence import iter_call_dirs, read_call_record


def build(
    *,
    log_dir: str | Path = "./call-logs",
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
        persist=str(log_dir),  # or persist=True for the platform's data dir, or PATTER_LOG_DIR
    )
    agent = phone.agent(
        "You are a helpful receptionist. Be brief.",
        stt=DeepgramSTT(**({"base_url": deepgram_base_url} if deepgram_base_url else {})),
        llm=OpenAILLM(**({"base_url": openai_base_url} if openai_base_url else {})),
        tts=ElevenLabsTTS(**({"base_url": elevenlabs_base_url} if elevenlabs_base_url else {})),
        first_message="Hello, how can I help?",
    )
    return phone, agent


def saved_calls(root: str | Path) -> list[dict[str, Any]]:
    """Every readable call under ``root``, oldest first (unreadable ones are skipped)."""
    records = (read_call_record(path) for path in iter_call_dirs(Path(root)))
    return sorted((r for r in records if r is not None), key=lambda r: r["started_at"])


async def run(phone: Patter, agent: Agent, port: int = 8000) -> None:
    async def on_call_end(data: dict[str, Any]) -> None:
        assert phone.log_root is not None
        calls = saved_calls(phone.log_root)
        print(f"Call {data['call_id']} saved; {len(calls)} call(s) under {phone.log_root}")

    await phone.serve(agent, port=port, on_call_end=on_call_end)


if __name__ == "__main__":
    asyncio.run(run(*build()))
