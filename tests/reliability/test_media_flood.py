"""Attack 2 of issue 18: one media socket could stall the server.

Figures before the fix: 63,500 malformed frames/s from one socket, each logged, wrote 94 MB of log in
10 s, pushed ``/health`` to a 2.1 s median, and a call dialled meanwhile was answered after 5.3 s with no
greeting; one socket pushed 1 GB of audio (~35 h at 8 kHz) to the vendor in 10 s; Telnyx ``error`` frames
were kept without bound (+208 MB in 10 s); one junk frame every 25 s kept a fake call alive past the
media watchdog. Each test runs the attack from a thread (its own client) while a legit call is dialled and
``/health`` polled on the server's loop, and prints its figures (``-s``; recorded in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect

from getpatter.call.budgets import MediaLimits
from getpatter.carriers.telnyx.media import TelnyxMediaCodec
from tests.fakes.twilio import new_sid
from tests.integration.harness import Harness, call_harness
from tests.reliability._serving import health_latencies, p95
from tests.reliability._support import RawStream, until

#: Generous bounds for a loaded 2-core CI machine (the pre-fix figures were 2.1 s and "never").
HEALTH_P95_MS = 1500.0
GREETING_S = 15.0
ATTACK_S = 12.0


@dataclass
class Flood:
    sent: int = 0
    closed_after_s: float | None = None
    errors: list[str] = field(default_factory=list)


def _flood(
    url: str,
    call_sid: str,
    params: dict[str, str],
    frame: Callable[[int], str],
    stop: threading.Event,
    out: Flood,
) -> None:
    """From a thread: open a Twilio media stream, start it (``params``: the answer's stream parameters,
    signed stream token included: the attacker is a real caller), then send ``frame(n)`` as fast as
    possible."""
    stream = new_sid("MZ")
    details = {
        "accountSid": "AC" + "0" * 31 + "1",
        "streamSid": stream,
        "callSid": call_sid,
        "tracks": ["inbound"],
        "customParameters": {**params, "caller": "+15550009999", "callee": "+15550002222"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    start = {"event": "start", "sequenceNumber": "1", "streamSid": stream, "start": details}
    try:
        with sync_connect(url, open_timeout=10, close_timeout=2) as ws:
            ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            ws.send(json.dumps(start))
            began = time.monotonic()
            while not stop.is_set() and time.monotonic() - began < ATTACK_S:
                try:
                    ws.send(frame(out.sent))
                except ConnectionClosed:
                    out.closed_after_s = time.monotonic() - began
                    return
                out.sent += 1
    except Exception as exc:  # surfaced by the test
        out.errors.append(repr(exc))


async def _under_attack(h: Harness, frame: Callable[[int], str]) -> tuple[Flood, list[float], float, Any]:
    """Run the flood while /health is polled and a legit call is dialled; returns the figures and the
    attacking call's session."""
    state = h.phone._state
    assert state is not None
    sid = new_sid("CA")
    params = await h.stream_params(sid)
    out, stop = Flood(), threading.Event()
    thread = threading.Thread(
        target=_flood,
        args=(f"{h.server.ws_url}/ws/stream/{sid}", sid, params, frame, stop, out),
        daemon=True,
    )
    thread.start()
    try:
        await until(lambda: sid in state.sessions, timeout=10)
        session = state.sessions[sid]
        health = asyncio.create_task(health_latencies(h.server.http_url, 40, gap_s=0.05))
        began = time.perf_counter()
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=GREETING_S)
        greeting_s = time.perf_counter() - began
        latencies = await health
        await asyncio.to_thread(thread.join, ATTACK_S + 10)
    finally:
        stop.set()
    assert not out.errors, out.errors
    return out, latencies, greeting_s, session


def _limits(h: Harness, **overrides: Any) -> None:
    state = h.phone._state
    assert state is not None
    state.runtime.media_limits = MediaLimits(**{"strikes_to_close": 3, **overrides})


async def test_malformed_frame_flood_is_dropped_rate_logged_and_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "getpatter")
    async with call_harness() as h:
        _limits(h)
        flood, health, greeting_s, session = await _under_attack(h, lambda n: "{not json " + str(n))
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    print(
        f"\nmalformed flood: {flood.sent} frames, closed after {flood.closed_after_s} s, "
        f"{session.budget.dropped['frame']} dropped over budget, {len(lines)} log lines, "
        f"/health p95 {p95(health):.0f} ms, greeting {greeting_s:.2f} s"
    )
    assert flood.closed_after_s is not None, "a socket that keeps exceeding its budget is closed"
    assert session.end_reason == "media_flood"
    assert session.budget.dropped["frame"] > 0
    assert len(lines) <= 6, f"{len(lines)} log lines for one socket's junk"
    assert p95(health) < HEALTH_P95_MS
    assert greeting_s < GREETING_S


async def test_audio_flood_reaches_the_vendor_at_a_few_times_real_time_at_most() -> None:
    second_of_mulaw = base64.b64encode(b"\xff" * 8000).decode()

    def frame(n: int) -> str:
        media = {"track": "inbound", "chunk": str(n + 1), "timestamp": "0", "payload": second_of_mulaw}
        return json.dumps({"event": "media", "streamSid": "MZ", "media": media})

    async with call_harness() as h:
        _limits(h)
        flood, health, greeting_s, session = await _under_attack(h, frame)
    lasted = flood.closed_after_s or ATTACK_S
    forwarded_s = session.budget.audio_total / 8000
    print(
        f"\naudio flood: {flood.sent} s of audio sent in {lasted:.1f} s, {forwarded_s:.0f} s forwarded, "
        f"closed after {flood.closed_after_s} s, /health p95 {p95(health):.0f} ms, "
        f"greeting {greeting_s:.2f} s"
    )
    assert forwarded_s <= 4.0 * (lasted + 2), f"{forwarded_s} s of audio forwarded in {lasted} s"
    assert session.budget.dropped["audio"] > 0
    assert flood.closed_after_s is not None
    assert p95(health) < HEALTH_P95_MS
    assert greeting_s < GREETING_S


async def test_junk_frames_do_not_keep_a_fake_call_alive_past_the_watchdog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTER_MEDIA_TIMEOUT_S", "1")
    async with call_harness() as h:
        stream = await RawStream.dial(h)
        await stream.start()
        began = time.perf_counter()
        fed_until_the_end = True
        for _ in range(40):  # junk every 0.2 s for 8 s: pre-fix, each one reset the 1 s watchdog
            if h.ended:
                break
            await stream.ws.send('{"event":"junk"}')
            await asyncio.sleep(0.2)
        else:
            fed_until_the_end = False
        await h.wait_ended(timeout=10)
        lasted = time.perf_counter() - began
        print(f"\nwatchdog: junk-fed call ended after {lasted:.1f} s ({h.ended[0]['reason']})")
        assert fed_until_the_end, "the call outlived 8 s of junk with a 1 s media timeout"
        assert h.ended[0]["reason"] == "no_media"
        await stream.close()


def test_telnyx_error_frames_are_kept_within_a_bound() -> None:
    codec = TelnyxMediaCodec()
    frame = json.dumps({"event": "error", "payload": {"code": 100003, "title": "x" * 90}})
    for _ in range(50_000):
        codec.parse(frame)
    assert len(codec.errors) <= 32 and codec.error_count == 50_000
