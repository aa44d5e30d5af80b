"""Two (or more) server processes of ``examples/two_instances.py`` sharing one Redis, for whole-call tests.

Each instance is a real subprocess (its own event loop, registry, dashboard store and call-log directory)
speaking to the fake Twilio and the fake OpenAI Realtime of the test on 127.0.0.1; the test plays the load
balancer by choosing which instance each webhook and media socket goes to.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from tests.fakes._patience import patient

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "two_instances.py"
HOST = "agent.example.test"
NUMBER = "+15550002222"
TOKEN = "fleet-dashboard-token-for-tests"
PREFIX = "fleettest"


class Instance:
    def __init__(self, name: str, process: subprocess.Popen[str], logs: Path) -> None:
        self.name = name
        self.process = process
        self.logs = logs
        self.lines: list[str] = []
        self.port = 0
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first output line matching ``pattern`` (a hang guard, not a time limit)."""
        compiled = re.compile(pattern)
        async with asyncio.timeout(patient(timeout)):
            while True:
                for line in list(self.lines):
                    if (found := compiled.search(line)) is not None:
                        return found
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.output}")
                await asyncio.sleep(0.05)

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output, re.M))

    def call(self, number: str) -> None:
        """Type ``number`` on the instance's standard input: it calls it (``wait=True``)."""
        assert self.process.stdin is not None
        self.process.stdin.write(number + "\n")
        self.process.stdin.flush()

    def client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=patient(10.0))


@contextlib.asynccontextmanager
async def fleet(
    tmp_path: Path,
    redis_url: str,
    twilio_rest: str,
    twilio: object,
    realtime_url: str,
    api_key: str,
    n: int = 2,
) -> AsyncIterator[list[Instance]]:
    """``n`` instances of the example, each listening and joined; SIGTERM and reaped at the end."""
    instances: list[Instance] = []
    try:
        for i in range(n):
            name = "AB"[i] if i < 2 else str(i)
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join(sys.path),
                "TWILIO_ACCOUNT_SID": twilio.account_sid,  # type: ignore[attr-defined]
                "TWILIO_AUTH_TOKEN": twilio.auth_token,  # type: ignore[attr-defined]
                "TWILIO_PHONE_NUMBER": NUMBER,
                "TWILIO_BASE_URL": twilio_rest,
                "OPENAI_API_KEY": api_key,
                "OPENAI_BASE_URL": realtime_url,
                "WEBHOOK_URL": HOST,
                "DASHBOARD_TOKEN": TOKEN,
                "PATTER_REDIS_URL": redis_url,
                "PATTER_REDIS_PREFIX": PREFIX,
                "PATTER_LOG_DIR": str(tmp_path / f"logs-{name}"),
                "PATTER_MAX_SOCKETS_PER_IP": "0",  # every simulated caller is 127.0.0.1
                "PATTER_DASHBOARD_NOTIFY": "0",
                "PYTHONUNBUFFERED": "1",
            }
            process = subprocess.Popen(
                [sys.executable, str(EXAMPLE), "0"],
                env=env,
                cwd=tmp_path,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            instance = Instance(name, process, tmp_path / f"logs-{name}")
            instances.append(instance)
            found = await instance.wait_for(r"getpatter dashboard: http://127\.0\.0\.1:(\d+)/", 60)
            instance.port = int(found.group(1))
        yield instances
    finally:
        for instance in instances:
            if instance.process.poll() is None:
                instance.process.terminate()
        for instance in instances:
            try:
                await asyncio.to_thread(instance.process.wait, 30)
            except subprocess.TimeoutExpired:
                instance.process.kill()
