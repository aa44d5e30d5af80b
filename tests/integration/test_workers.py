"""``examples/multiworker.py`` under ``uvicorn --workers 2``: calls spread over independent processes.

The carrier (fake Twilio) and the vendor (fake OpenAI Realtime) run here on 127.0.0.1; the server is a
real uvicorn with two worker processes, each of which imported the example and built its own Patter.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.fakes.openai_realtime import FakeOpenAIRealtime
from tests.fakes.server import running
from tests.fakes.twilio import FakeCall, FakeTwilio

ROOT = Path(__file__).resolve().parents[2]
HOST = "agent.example.test"
NUMBER = "+15550002222"
CALLS = 8
WORKERS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _worker_pids(supervisor: int) -> list[str]:
    """uvicorn's worker processes (multiprocessing spawns), not its resource tracker."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


async def _health(url: str, timeout: float = 30.0) -> None:
    async with httpx.AsyncClient(timeout=2.0) as client, asyncio.timeout(timeout):
        while True:
            try:
                if (await client.get(url + "/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)


async def _one_turn(twilio: FakeTwilio, url: str) -> FakeCall:
    call = await twilio.start_inbound_call(url, HOST)
    await call.wait_for_agent_audio(timeout=10)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=15)
    await call.wait_agent_quiet(quiet_ms=300, timeout=15)
    await call.hangup()
    return call


async def test_uvicorn_workers_each_answer_calls_independently(tmp_path: Path) -> None:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    realtime = FakeOpenAIRealtime(
        utterances=["When are you open?"] * CALLS, fallback_text="We are open nine to five.", ms_per_char=5
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    async with running(twilio.app), running(realtime.app) as rt:
        env = {
            **os.environ,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_PHONE_NUMBER": NUMBER,
            "WEBHOOK_URL": HOST,
            "OPENAI_API_KEY": realtime.api_key,
            "OPENAI_BASE_URL": rt.http_url + "/v1",
            "PATTER_LOG_DIR": str(tmp_path / "logs"),
            "PATTER_MAX_SOCKETS_PER_IP": "0",  # every simulated caller is 127.0.0.1
        }
        command = [sys.executable, "-m", "uvicorn", "multiworker:app", "--app-dir", str(ROOT / "examples")]
        command += ["--workers", str(WORKERS), "--host", "127.0.0.1", "--port", str(port)]
        stdout = tmp_path / "server.out"
        with stdout.open("w") as out:
            server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            await _health(url)
            calls = await asyncio.wait_for(
                asyncio.gather(*(_one_turn(twilio, url) for _ in range(CALLS))), 60
            )
            async with asyncio.timeout(15):
                while len(re.findall(r"^Call \S+ ended", stdout.read_text(), re.M)) < CALLS:
                    await asyncio.sleep(0.1)
            workers = _worker_pids(server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.wait, 20)

    ended = re.findall(r"^Call (\S+) ended in worker (\d+): (\d+) caller turn", stdout.read_text(), re.M)
    assert sorted(call_id for call_id, _, _ in ended) == sorted(c.sid for c in calls)
    assert all(turns == "1" for _, _, turns in ended)  # every call heard its caller and answered
    assert all(c.protocol_errors == [] for c in calls)
    # Two worker processes under uvicorn's supervisor, and every call ran in one of them (how the kernel
    # spreads connections between them is its business: usually both get some).
    assert len(workers) == WORKERS
    assert {pid for _, pid, _ in ended} <= set(workers)
    assert server.returncode == 0
