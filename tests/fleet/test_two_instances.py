"""Two ``serve()`` processes with one ``redis_url`` fire a shared schedule once per fire time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from getpatter import Patter, Twilio
from getpatter.errors import PatterConfigError
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio
from tests.redis_server import RedisProcess

NUMBER = "+15550002222"
INSTANCE = textwrap.dedent(
    """
    import asyncio, sys
    from getpatter import Patter, Twilio
    from getpatter.scheduling import schedule_interval

    sid, token, rest, redis_url, out_path, seconds = sys.argv[1:7]

    async def main() -> None:
        phone = Patter(
            carrier=Twilio(sid, token, base_url=rest), phone_number="+15550002222",
            webhook_url="agent.example.test", redis_url=redis_url,
        )
        out = open(out_path, "a", buffering=1)
        handle = schedule_interval(
            0.5, lambda: out.write(f"{handle.next_run_time.timestamp():.3f}\\n"), name="fleet-tick"
        )
        serving = asyncio.create_task(phone.serve(phone.agent("You are a test."), port=0))
        while True:  # serve() may not have started its runner yet
            try:
                ready = phone.ready
                break
            except Exception:
                await asyncio.sleep(0.05)
        await ready
        print("READY", flush=True)
        await asyncio.sleep(float(seconds))
        await phone.disconnect()
        await serving

    asyncio.run(main())
    """
)


def ticks(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


async def test_a_schedule_on_two_serving_instances_fires_once_per_fire_time(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    script = tmp_path / "instance.py"
    script.write_text(INSTANCE)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "PYTHONPATH": os.pathsep.join(sys.path)}
    async with running(twilio.app) as rest:
        outs = [tmp_path / f"ticks-{i}.txt" for i in range(2)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(script),
                    twilio.account_sid,
                    twilio.auth_token,
                    rest.http_url,
                    redis_server.url,
                    str(out),
                    "6",
                ],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for out in outs
        ]
        try:
            codes = await asyncio.wait_for(asyncio.gather(*(asyncio.to_thread(p.wait) for p in procs)), 120)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        logs = [p.stdout.read().decode() if p.stdout else "" for p in procs]
        await twilio.aclose()
    assert codes == [0, 0], logs
    assert all("READY" in log for log in logs), logs
    # Each line is the fire time the callback ran for (a point of the shared half-second grid).
    fired = sorted(ticks(outs[0]) + ticks(outs[1]))
    assert len(fired) >= 6, (fired, logs)
    assert all(abs(t * 2 - round(t * 2)) < 1e-3 for t in fired), fired
    assert len(fired) == len(set(fired)), fired  # no fire time ran on both instances


def test_a_redis_url_with_another_scheme_is_refused_at_construction() -> None:
    try:
        Patter(
            carrier=Twilio("AC" + "0" * 32, "token"),
            phone_number=NUMBER,
            webhook_url="agent.example.test",
            redis_url="http://localhost:6379",
        )
    except PatterConfigError as exc:
        assert "redis://" in str(exc) and "redis_url" in str(exc)
    else:
        raise AssertionError("redis_url='http://...' was accepted")
