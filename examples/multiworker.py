"""Answer inbound calls from several processes: one event loop per CPU core, under uvicorn's workers.

    export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... TWILIO_PHONE_NUMBER=+15551234567
    export OPENAI_API_KEY=sk-... WEBHOOK_URL=calls.example.com
    pip install 'getpatter[fast]'      # uvloop + httptools
    uvicorn multiworker:app --app-dir examples --workers 4 --host 0.0.0.0 --port 8000 --loop uvloop

Every worker imports this module and builds its own ``Patter`` and agent, so calls are independent: a
worker that crashes takes only its own calls with it. Inbound calls need no shared state (the voice
webhook and the media socket may land on different workers), so any worker can take either request.
``serve()`` is not used here, so point the number's Voice URL at
``https://$WEBHOOK_URL/webhooks/twilio/voice`` once yourself (``serve()`` does it for one process).

Per worker, not shared: the dashboard (each shows its own calls; persisted logs in ``PATTER_LOG_DIR``
are shared) and the per-IP media socket cap. Outbound calls (``phone.call``) keep their state in the
process that placed them, so place them from a single-process ``serve()``.
``OPENAI_BASE_URL`` (optional) points the engine at an OpenAI-compatible gateway.
"""

from __future__ import annotations

import os
from typing import Any

from getpatter import OpenAIRealtime, Patter, Twilio


async def print_call(data: dict[str, Any]) -> None:
    said = sum(1 for line in data["transcript"] if line["role"] == "user")
    print(f"Call {data['call_id']} ended in worker {os.getpid()}: {said} caller turn(s)", flush=True)


def build_app() -> Any:
    phone = Patter(
        carrier=Twilio(),
        phone_number=os.environ["TWILIO_PHONE_NUMBER"],
        webhook_url=os.environ["WEBHOOK_URL"],
    )
    base_url = os.environ.get("OPENAI_BASE_URL", "")
    agent = phone.agent(
        "You are Sam, the friendly receptionist of Acme Dental. Keep answers short: this is a phone call.",
        engine=OpenAIRealtime(**({"base_url": base_url} if base_url else {})),
        first_message="Thanks for calling Acme Dental, this is Sam. How can I help?",
    )
    return phone.asgi_app(agent, on_call_end=print_call, dashboard=False)


app = build_app()
