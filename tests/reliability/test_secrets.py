"""Secrets stay secret: a whole call served by ``phone.serve()`` is scanned for every secret it used.

Scanned: every log record at DEBUG (product loggers, uvicorn, websockets server side, httpx/httpcore),
every file of the call log, and every dashboard API response. Secrets: the carrier auth token, the three
vendor keys, the stream tokens the server minted and the generated dashboard token. The dashboard token
must appear exactly where its owner needs it: the start-up banner on standard output.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from getpatter import Patter
from getpatter.carriers.twilio.config import Twilio
from getpatter.llm.openai import OpenAILLM
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio

HOST = "agent.example.test"
NUMBER = "+15550002222"
#: Log records the fakes themselves write (the test's carrier and vendors are not the product).
FAKE_LOGGERS = ("websockets.client", "tests.")

SECRETS = {
    "twilio": "twilio-auth-" + "T1" * 12,
    "deepgram": "dg-key-" + "D2" * 12,
    "openai": "sk-test-" + "O3" * 12,
    "elevenlabs": "el-key-" + "E4" * 12,
}
DASHBOARD_ROUTES = (
    "/api/dashboard/calls",
    "/api/dashboard/active",
    "/api/dashboard/aggregates",
    "/api/v1/calls",
    "/api/v1/analytics/overview",
    "/api/dashboard/export/calls?format=json",
    "/api/dashboard/export/calls?format=csv",
)


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value and value in text]


async def test_a_whole_call_writes_no_secret_anywhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    twilio = FakeTwilio(auth_token=SECRETS["twilio"], owned_numbers=(NUMBER,))
    deepgram = FakeDeepgram(api_key=SECRETS["deepgram"], utterances=["What are your hours?"])
    llm = FakeOpenAIChat(api_key=SECRETS["openai"], replies=["Nine to five."])
    tts = FakeElevenLabs(api_key=SECRETS["elevenlabs"], ms_per_char=2.0)
    async with (
        running(twilio.app) as tw,
        running(deepgram.app) as dg,
        running(llm.app) as oa,
        running(tts.app) as el,
    ):
        phone = Patter(
            carrier=Twilio(twilio.account_sid, SECRETS["twilio"], base_url=tw.http_url),
            phone_number=NUMBER,
            webhook_url=HOST,  # public: the dashboard gets a generated token
            persist=str(tmp_path),
        )
        agent = phone.agent(
            "You are a receptionist.",
            first_message="Hello.",
            stt=DeepgramSTT(api_key=SECRETS["deepgram"], base_url=dg.ws_url),
            llm=OpenAILLM(api_key=SECRETS["openai"], base_url=oa.http_url + "/v1"),
            tts=ElevenLabsTTS(api_key=SECRETS["elevenlabs"], base_url=el.http_url),
        )
        ended: list[dict[str, Any]] = []
        serving = asyncio.create_task(phone.serve(agent, port=0, on_call_end=ended.append))
        while phone._runner is None:
            await asyncio.sleep(0.01)
        port = await asyncio.wait_for(phone.ready, 10)
        base = f"http://127.0.0.1:{port}"
        try:
            call = await twilio.start_inbound_call(base, HOST)
            stream_tokens = {"stream token": call.custom_params["stream_token"]}
            await call.wait_for_agent_audio(timeout=10)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await call.say_tone(500)
            await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await call.hangup()
            for _ in range(500):
                if ended:
                    break
                await asyncio.sleep(0.02)
            await phone.flush_logs()
            token = phone.dashboard_token
            assert token, "an exposed server must generate a dashboard token"
            responses: list[str] = []
            auth = {"Authorization": f"Bearer {token}"}  # not ?token=: the test's own client logs URLs
            async with httpx.AsyncClient(timeout=10.0, headers=auth) as client:
                for route in (*DASHBOARD_ROUTES, f"/api/dashboard/calls/{call.sid}", "/"):
                    response = await client.get(f"{base}{route}")
                    assert response.status_code == 200, route
                    responses.append(response.text)
        finally:
            await phone.disconnect()
            await asyncio.wait_for(serving, 10)
            await twilio.aclose()

    assert ended and ended[0]["transcript"][-1] == {"role": "assistant", "text": "Nine to five."}
    everything = {**SECRETS, **stream_tokens, "dashboard token": token}

    # Logs, at DEBUG, from everything but the fakes: not one secret (the dashboard token included).
    product_records = [r for r in caplog.records if not r.name.startswith(FAKE_LOGGERS)]
    assert len(product_records) > 10  # the scan saw the call's logging
    for record in product_records:
        text = record.getMessage() + (record.exc_text or "")
        assert _leaks(text, everything) == [], (record.name, text[:300])

    # Call-log files.
    files = [p for p in tmp_path.rglob("*") if p.is_file()]  # noqa: ASYNC240 (after the call)
    assert any(p.name == "metadata.json" for p in files) and any(p.name == "transcript.jsonl" for p in files)
    for path in files:
        assert _leaks(path.read_text("utf-8", errors="replace"), everything) == [], path

    # Dashboard responses (the calls are there: the scan is not of empty pages).
    assert any(call.sid in text for text in responses)
    for text in responses:
        assert _leaks(text, everything) == []

    # The generated token is on stdout, in the banner, with the dashboard URL.
    printed = capsys.readouterr().out
    assert re.search(rf"http://127\.0\.0\.1:{port}/\?token={re.escape(token)}", printed), printed
    assert _leaks(printed, {**SECRETS, **stream_tokens}) == []


def test_reprs_and_errors_hide_carrier_and_vendor_secrets() -> None:
    carrier = Twilio("AC" + "0" * 32, SECRETS["twilio"])
    values = [
        repr(carrier),
        repr(DeepgramSTT(api_key=SECRETS["deepgram"])),
        repr(OpenAILLM(api_key=SECRETS["openai"])),
        repr(ElevenLabsTTS(api_key=SECRETS["elevenlabs"])),
    ]
    phone = Patter(carrier=carrier, phone_number=NUMBER, webhook_url=HOST)
    agent = phone.agent(
        "p", stt=DeepgramSTT(api_key=SECRETS["deepgram"]), tts=ElevenLabsTTS(api_key="x" * 20)
    )
    phone.asgi_app(agent, on_message=lambda e: "ok", dashboard=False)
    state = phone._state
    assert state is not None
    token = state.stream_gate.tokens.mint("CA1", "inbound")
    values += [repr(state), repr(state.stream_gate), repr(agent), repr(phone.settings)]
    for value in values:
        assert _leaks(value, {**SECRETS, "stream token": token}) == [], value
