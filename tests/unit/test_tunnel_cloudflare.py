"""Quick tunnels against a fake ``cloudflared`` on PATH that prints what the real one prints.

The fake (written into tmp_path) logs to stderr in cloudflared's console format (cloudflared.md §2):
the disclaimer with its own URLs, the "Requesting ... trycloudflare.com" line, then the ASCII box with
the tunnel URL. Its mode comes from ``FAKE_CF_MODE``; it records its argv, PID and signals in a file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from getpatter import CloudflareTunnel, Patter, PatterConfigError, Twilio
from getpatter.errors import PatterConnectionError
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from getpatter.tunnels.cloudflare import CloudflaredTunnel, find_tunnel_host, origin_host
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import running
from tests.fakes.twilio import FakeTwilio

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake cloudflared is a shebang script")

HOST = "brave-otter-lines-example.trycloudflare.com"
NUMBER = "+15550002222"

FAKE = r"""
import json, os, signal, sys, time
mode = os.environ.get("FAKE_CF_MODE", "ok")
log_path = os.environ["FAKE_CF_LOG"]
def record(what):
    with open(log_path, "a") as f:
        f.write(what + "\n")
record("argv " + json.dumps(sys.argv[1:]))
record("pid %d" % os.getpid())
terms = 0
def on_term(signum, frame):
    global terms
    terms += 1
    record("SIGTERM")
    if mode != "stubborn" or terms >= 2:
        os._exit(0)
signal.signal(signal.SIGTERM, on_term)
def log(line, stream=sys.stderr):
    stream.write("2026-01-01T12:00:00Z INF " + line + "\n")
    stream.flush()
log("Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to "
    "experiment ... https://developers.cloudflare.com/cloudflare-one/connections/connect-apps")
log("Requesting new quick Tunnel on trycloudflare.com...")
if mode == "fail":
    log("failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": 429")
    sys.exit(1)
if mode != "silent":
    out = sys.stdout if mode == "stdout" else sys.stderr
    log("+" + "-" * 92 + "+", out)
    log("|  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |", out)
    log("|  https://brave-otter-lines-example.trycloudflare.com                                       |", out)
    log("+" + "-" * 92 + "+", out)
    log("Starting metrics server on 127.0.0.1:20241/metrics")
    log("Registered tunnel connection connIndex=0 connection=abc event=0 ip=198.41.0.1 location=xyz01 "
        "protocol=quic")
    if mode == "chatty":
        for i in range(3000):  # ~300 KB: far more than a pipe buffer holds
            log("WRN retrying connection to origin, attempt %d %s" % (i, "x" * 60))
        record("chatty done")
while True:
    time.sleep(0.05)
"""


@dataclass
class FakeCloudflared:
    bin_dir: Path
    log_path: Path
    monkeypatch: pytest.MonkeyPatch

    def mode(self, mode: str) -> None:
        self.monkeypatch.setenv("FAKE_CF_MODE", mode)

    def lines(self) -> list[str]:
        return self.log_path.read_text().splitlines() if self.log_path.exists() else []

    async def wait_for(self, line: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while line not in self.lines():
                await asyncio.sleep(0.02)


@pytest.fixture
def fake_cloudflared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCloudflared:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "cloudflared"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    log_path = tmp_path / "cloudflared.log"
    monkeypatch.setenv("FAKE_CF_LOG", str(log_path))
    monkeypatch.setenv("FAKE_CF_MODE", "ok")
    return FakeCloudflared(bin_dir, log_path, monkeypatch)


# -- URL matching ------------------------------------------------------------------------------------
def test_only_the_tunnel_url_is_taken_from_the_log() -> None:
    assert find_tunnel_host("INF Thank you ... https://developers.cloudflare.com/cloudflare-one/x") is None
    assert find_tunnel_host("INF Requesting new quick Tunnel on trycloudflare.com...") is None
    assert find_tunnel_host('ERR failed: Post "https://api.trycloudflare.com/tunnel": 429') is None
    assert find_tunnel_host(f"INF |  https://{HOST}     |") == HOST
    assert find_tunnel_host("https://a-b.c-d.trycloudflare.com") == "a-b.c-d.trycloudflare.com"


def test_origin_is_loopback_for_wildcard_binds() -> None:
    assert origin_host("127.0.0.1") == origin_host("0.0.0.0") == "127.0.0.1"
    assert origin_host("10.0.0.5") == "10.0.0.5"
    assert origin_host("::") == "[::1]"


# -- the process -------------------------------------------------------------------------------------
async def test_start_returns_the_host_and_stop_terminates(fake_cloudflared: FakeCloudflared) -> None:
    tunnel = CloudflaredTunnel(8123, timeout_s=5)
    assert await tunnel.start() == HOST
    assert tunnel.running
    lines = fake_cloudflared.lines()
    assert lines[0] == 'argv ["tunnel", "--url", "http://127.0.0.1:8123", "--no-autoupdate"]'
    await tunnel.stop()
    await tunnel.stop()  # idempotent
    assert not tunnel.running
    assert fake_cloudflared.lines().count("SIGTERM") == 1


async def test_url_printed_on_stdout_is_found_too(fake_cloudflared: FakeCloudflared) -> None:
    fake_cloudflared.mode("stdout")
    tunnel = CloudflaredTunnel(8123, timeout_s=5)
    try:
        assert await tunnel.start() == HOST
    finally:
        await tunnel.stop()


async def test_pipes_keep_draining_after_the_url(fake_cloudflared: FakeCloudflared) -> None:
    fake_cloudflared.mode("chatty")
    tunnel = CloudflaredTunnel(8123, timeout_s=5)
    try:
        await tunnel.start()
        # Without a reader the fake would block on a full pipe long before this line.
        await fake_cloudflared.wait_for("chatty done", timeout=10)
        assert "chatty done" in fake_cloudflared.lines()
        assert tunnel.running  # still alive after writing far more than a pipe buffer holds
    finally:
        await tunnel.stop()


async def test_no_url_in_time_is_a_timeout_and_the_process_is_stopped(
    fake_cloudflared: FakeCloudflared,
) -> None:
    fake_cloudflared.mode("silent")
    tunnel = CloudflaredTunnel(8123, timeout_s=1)
    with pytest.raises(TimeoutError, match=r"within 1 s[\s\S]*Requesting new quick Tunnel"):
        await tunnel.start()
    assert not tunnel.running and "SIGTERM" in fake_cloudflared.lines()


async def test_early_exit_reports_cloudflareds_last_lines(fake_cloudflared: FakeCloudflared) -> None:
    fake_cloudflared.mode("fail")
    with pytest.raises(PatterConnectionError, match=r"code 1[\s\S]*failed to request quick Tunnel"):
        await CloudflaredTunnel(8123, timeout_s=5).start()


async def test_missing_binary_explains_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        await CloudflaredTunnel(8123).start()
    message = str(info.value)
    assert "brew install cloudflared" in message and "apt" in message and "winget" in message


async def test_a_second_sigterm_ends_a_process_that_drains(fake_cloudflared: FakeCloudflared) -> None:
    fake_cloudflared.mode("stubborn")  # like cloudflared's grace period: the first SIGTERM only starts it
    tunnel = CloudflaredTunnel(8123, timeout_s=5, stop_grace_s=0.2)
    await tunnel.start()
    await tunnel.stop()
    assert fake_cloudflared.lines().count("SIGTERM") == 2 and not tunnel.running


def test_leftover_tunnel_is_terminated_at_interpreter_exit(fake_cloudflared: FakeCloudflared) -> None:
    child = textwrap.dedent(
        """
        import asyncio, sys
        from getpatter.tunnels.cloudflare import CloudflaredTunnel
        loop = asyncio.new_event_loop()
        print(loop.run_until_complete(CloudflaredTunnel(8123, timeout_s=5).start()), flush=True)
        sys.exit(0)  # no stop(): the atexit hook must end cloudflared
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == HOST
    deadline = time.monotonic() + 5
    while "SIGTERM" not in fake_cloudflared.lines() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "SIGTERM" in fake_cloudflared.lines()


# -- serve() with a quick tunnel --------------------------------------------------------------------
@pytest.mark.parametrize("where", ["serve", "constructor"])
async def test_serve_with_tunnel_points_the_number_at_the_tunnel_and_stops_it(
    where: str, fake_cloudflared: FakeCloudflared, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="getpatter")
    twilio, deepgram, tts = FakeTwilio(owned_numbers=(NUMBER,)), FakeDeepgram(), FakeElevenLabs()
    async with running(twilio.app) as tw, running(deepgram.app) as dg, running(tts.app) as el:
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=tw.http_url),
            phone_number=NUMBER,
            tunnel=CloudflareTunnel() if where == "constructor" else None,
        )
        agent = phone.agent(
            "unused",
            stt=DeepgramSTT(api_key=deepgram.api_key, base_url=dg.ws_url),
            tts=ElevenLabsTTS(api_key=tts.api_key, base_url=el.http_url),
            first_message="Hello there.",
        )
        serving = asyncio.create_task(
            phone.serve(agent, port=0, on_message=lambda e: "ok", tunnel=where == "serve")
        )
        while phone._runner is None:
            await asyncio.sleep(0.01)
        port = await asyncio.wait_for(phone.ready, 5)
        assert await asyncio.wait_for(phone.tunnel_ready, 5) == HOST
        assert phone.webhook_host == HOST
        argv = fake_cloudflared.lines()[0]
        assert f'"http://127.0.0.1:{port}"' in argv

        async with asyncio.timeout(5):
            while not twilio.number(NUMBER).get("voice_url"):
                await asyncio.sleep(0.02)
        assert twilio.number(NUMBER)["voice_url"] == f"https://{HOST}/webhooks/twilio/voice"

        # A call signed for the tunnel's public URL is accepted and answered.
        call = await twilio.start_inbound_call(f"http://127.0.0.1:{port}", HOST)
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=200, timeout=5)
        await phone.disconnect()
        await asyncio.wait_for(serving, 10)
        await call.wait_closed(timeout=5)
    await twilio.aclose()
    assert "SIGTERM" in fake_cloudflared.lines()
    assert phone.webhook_host == ""  # the quick-tunnel host died with the process
    logged = caplog.text
    assert f"Tunnel ready: https://{HOST}" in logged
    assert f"VoiceUrl set to https://{HOST}/webhooks/twilio/voice" in logged


async def test_tunnel_true_with_a_webhook_url_is_a_config_error(fake_cloudflared: FakeCloudflared) -> None:
    phone = Patter(carrier=Twilio("AC" + "0" * 32, "token"), phone_number=NUMBER, webhook_url="a.example.com")
    agent = phone.agent("unused", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
    with pytest.raises(PatterConfigError, match=r"tunnel=True.*webhook_url"):
        await phone.serve(agent, port=0, on_message=lambda e: "ok", tunnel=True)
    with pytest.raises(PatterConfigError, match="webhook_url"):
        Patter(
            carrier=Twilio("AC" + "0" * 32, "token"), phone_number=NUMBER, webhook_url="a.b.com", tunnel=True
        )
    assert fake_cloudflared.lines() == []  # nothing was started


async def test_serve_without_cloudflared_fails_fast_and_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    phone = Patter(carrier=Twilio("AC" + "0" * 32, "token"), phone_number=NUMBER, tunnel=True)
    agent = phone.agent("unused", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
    with pytest.raises(FileNotFoundError, match="brew install cloudflared"):
        await asyncio.wait_for(phone.serve(agent, port=0, on_message=lambda e: "ok"), 10)
    assert phone._runner is None and phone.webhook_host == ""
