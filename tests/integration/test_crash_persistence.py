"""SIGKILL the server mid-call: every call-log file still parses, and a restarted server lists the call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from getpatter.dashboard.store import MetricsStore
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio

HOST = "agent.example.test"
NUMBER = "+15550002222"

SERVER = textwrap.dedent(
    """
    import asyncio, os, sys
    from getpatter import Patter, Twilio, DeepgramSTT, OpenAILLM, ElevenLabsTTS
    env = os.environ
    phone = Patter(carrier=Twilio(env["T_SID"], env["T_TOKEN"], base_url=env["T_URL"]),
                   phone_number="+15550002222", webhook_url="agent.example.test", persist=env["LOG_ROOT"])
    agent = phone.agent("Be brief.", stt=DeepgramSTT(api_key="dg-test", base_url=env["DG_URL"]),
                        llm=OpenAILLM(api_key="sk-test", base_url=env["LLM_URL"]),
                        tts=ElevenLabsTTS(api_key="el-test", base_url=env["TTS_URL"]),
                        first_message="Hello there, thanks for calling the clinic today.")
    asyncio.run(phone.serve(agent, port=int(env["PORT"]), dashboard_token="t0ken"))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_health(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(base + "/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("server did not come up")


async def test_sigkill_mid_call_leaves_parseable_logs_and_a_restart_lists_the_call(tmp_path: Path) -> None:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    deepgram = FakeDeepgram(utterances=["Hello?"])
    llm = FakeOpenAIChat(replies=["A long answer that is still being spoken when the server dies."])
    tts = FakeElevenLabs(ms_per_char=40)
    root = tmp_path / "logs"
    async with (
        running(twilio.app) as tw,
        running(deepgram.app) as dg,
        running(llm.app) as lm,
        running(tts.app) as el,
    ):
        port = _free_port()
        env = {
            **os.environ,
            "T_SID": twilio.account_sid, "T_TOKEN": twilio.auth_token, "T_URL": tw.http_url,
            "DG_URL": dg.ws_url, "LLM_URL": lm.http_url + "/v1", "TTS_URL": el.http_url,
            "LOG_ROOT": str(root), "PORT": str(port), "PATTER_LOG_RETENTION_DAYS": "0",
        }  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_health(base)
            call = await twilio.start_inbound_call(base, HOST)
            await call.wait_for_agent_audio(timeout=10)
            await call.wait_agent_quiet(quiet_ms=300, timeout=15)
            await call.say_tone(500)
            await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
            await asyncio.sleep(0.3)  # mid-answer
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
        await call.aclose()
        await twilio.aclose()

    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "metadata.json" for p in files)
    for path in files:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
    assert not [p for p in files if ".tmp" in p.name]  # no half-written temp files left behind

    # A restarted server hydrates its history: the dashboard API lists the call again.
    store = MetricsStore()
    assert store.hydrate(root) == 1
    assert store.hydrate(root) == 0  # idempotent
    port2 = _free_port()
    env2 = {**env, "PORT": str(port2)}
    restarted = subprocess.Popen([sys.executable, "-c", SERVER], env=env2)
    try:
        base2 = f"http://127.0.0.1:{port2}"
        await _wait_health(base2)
        async with httpx.AsyncClient() as client:
            calls = (await client.get(base2 + "/api/dashboard/calls?token=t0ken")).json()
        assert [c["call_id"] for c in calls] == [call.sid]
    finally:
        restarted.send_signal(signal.SIGTERM)
        try:
            restarted.wait(timeout=15)
        except subprocess.TimeoutExpired:
            restarted.kill()
