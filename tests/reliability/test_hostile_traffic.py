"""Hostile traffic, measured: an upgrade flood while real calls run, bad frames on a live call, slow-loris.

Attackers connect from other loopback addresses (127.0.0.2-5) than the carrier (127.0.0.1), as on the
internet they come from other addresses than the carrier's media edge. Figures are printed (run with
``-s``) and recorded in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.fakes.twilio import FakeCall, new_sid
from tests.integration.harness import Harness, call_harness
from tests.reliability._support import until

ROOT = Path(__file__).resolve().parents[2]
ATTEMPTS = 1000
AT_ONCE = 10
#: Attempts per second: the flood lasts about as long as the real calls (LINES of them at a time), and
#: both share the CI machine's 2 cores with the server.
RATE = 40
LINES = 5
REAL_CALLS = 20
ATTACKERS = ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
WORDS = [f"plan {i}" for i in range(REAL_CALLS)]
#: RSS growth allowed over flood + 20 calls (the calls' buffers and the in-process fakes' recordings).
RSS_SLACK_BYTES = 64 * 1024 * 1024
#: RSS growth allowed over 1,000 refused attempts alone (no per-attempt state may stay behind).
FLOOD_SLACK_BYTES = 8 * 1024 * 1024


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _echo(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m["role"] == "user"]
    return f"You said: {users[-1]['content']}."


async def _flood(url: str, attempts: int, rate: float = RATE) -> collections.Counter[str]:
    """Run the attackers in a child process (their CPU is not the server's, as on the internet)."""
    root = ROOT
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability._flood",
        url,
        str(attempts),
        str(AT_ONCE),
        str(AT_ONCE / rate),
        cwd=root,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out
    return collections.Counter(json.loads(out.decode().strip().splitlines()[-1]))


async def _real_call(h: Harness, index: int, lines: asyncio.Semaphore) -> FakeCall:
    async with lines:
        return await _converse(h, index)


async def _converse(h: Harness, index: int) -> FakeCall:
    await asyncio.sleep(0.1 * (index % LINES))  # staggered: calls in different phases
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=20)
    await call.wait_agent_quiet(quiet_ms=300, timeout=20)
    await call.say_tone(300 + 15 * index)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=20)
    await call.wait_agent_quiet(quiet_ms=300, timeout=20)
    await call.hangup()
    return call


async def test_an_upgrade_flood_reaches_no_vendor_and_leaves_real_calls_alone() -> None:
    utterances = [f"I would like {w}" for w in WORDS]
    async with call_harness(utterances=utterances, replies=_echo, ms_per_char=5.0) as h:
        state = h.phone._state
        assert state is not None
        await _flood(h.server.ws_url, 100)  # warm-up: imports, caches, allocator arenas
        rss_before = rss_bytes()
        flood = asyncio.create_task(_flood(h.server.ws_url, ATTEMPTS))
        lines = asyncio.Semaphore(LINES)
        calls = await asyncio.gather(*(_real_call(h, i, lines) for i in range(REAL_CALLS)))
        outcomes = await asyncio.wait_for(flood, 300)
        await h.wait_ended(count=REAL_CALLS, timeout=30)
        rss_after = rss_bytes()

        # Every attempt was refused: before accept (per-IP cap) or with 1008 after its bad start.
        assert sum(outcomes.values()) == ATTEMPTS
        assert set(outcomes) <= {"http 403", "close 1008"}, outcomes
        # Real calls: all kept, each answered with its own words, from 127.0.0.1 with no per-IP cap.
        sids = {c.sid for c in calls}
        assert sorted(e["call_id"] for e in h.ended) == sorted(sids)
        for end in h.ended:
            assert end["transcript"][-1]["text"].startswith("You said: I would like plan")
        # Vendor connections: exactly the real calls' (one STT socket and one LLM turn each).
        assert len(h.deepgram.connections) == REAL_CALLS
        assert len(h.llm.requests) == REAL_CALLS
        # Nothing of the flood stays behind.
        await until(lambda: not state.sessions, timeout=10)
        assert state.stream_gate.tokens.spent_count == REAL_CALLS
        assert state.socket_limiter._open == {}
        growth = rss_after - rss_before  # the 20 calls (and the in-process fakes' recordings) included
        assert growth < RSS_SLACK_BYTES, growth
        # The flood alone, once the calls are over: memory stays flat.
        rss_quiet = rss_bytes()
        again = await _flood(h.server.ws_url, ATTEMPTS, rate=200)
        flood_growth = rss_bytes() - rss_quiet
        assert set(again) <= {"http 403", "close 1008"} and sum(again.values()) == ATTEMPTS
        assert flood_growth < FLOOD_SLACK_BYTES, flood_growth
        assert state.stream_gate.tokens.spent_count == REAL_CALLS and not state.sessions
        print(
            f"\nflood: {ATTEMPTS} attempts {dict(outcomes)}; real calls kept {len(h.ended)}/{REAL_CALLS}; "
            f"vendor connections for attackers 0 (STT {len(h.deepgram.connections)}, "
            f"LLM {len(h.llm.requests)} = real calls); RSS growth {growth / 1e6:.1f} MB with the calls, "
            f"{flood_growth / 1e6:.1f} MB over a second flood alone; "
            f"refusals: {state.stream_gate.refusals.total}, one WARNING line per source"
        )


async def test_oversized_and_malformed_frames_on_an_authenticated_socket_are_dropped() -> None:
    async with call_harness(utterances=["Are you there?"], replies=["Yes, still here."]) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=10)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        bad = [
            "x" * (2 * 1024 * 1024),  # over the 1 MiB frame limit
            json.dumps({"event": "media", "media": {"payload": "A" * (1024 * 1024 + 8)}}),
            "{not json",
            "[]",
            "null",
            json.dumps({"event": "media", "media": {"payload": "%%% not base64"}}),
            json.dumps({"event": "media", "media": "nope"}),
            json.dumps({"event": 42}),
            json.dumps({"event": "start", "start": {"callSid": new_sid("CA"), "streamSid": "MZx"}}),
            json.dumps({"event": "mark", "mark": {"name": ["not", "a", "string"]}}),
            json.dumps({"event": "dtmf", "dtmf": {"digit": "XYZ"}}),
            "",
        ]
        for frame in bad * 5:
            await call.send_raw(frame)
        # The call goes on: the caller speaks and is answered.
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        assert call.connected
        await call.hangup()
        await h.wait_ended()
    assert len(h.ended) == 1
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Yes, still here."}
    assert call.protocol_errors == []  # and the server never answered garbage with garbage


async def test_slow_loris_webhook_clients_do_not_hold_up_real_calls() -> None:
    async with call_harness() as h:
        host, port = "127.0.0.1", h.server.port
        lorises: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        for i in range(50):
            reader, writer = await asyncio.open_connection(host, port, local_addr=(ATTACKERS[i % 4], 0))
            writer.write(b"POST /webhooks/twilio/voice HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n")
            await writer.drain()
            lorises.append((reader, writer))

        async def dribble() -> None:
            while True:
                for _, writer in lorises:
                    if not writer.is_closing():
                        writer.write(b"X-A: b\r\n")
                        with contextlib.suppress(ConnectionError):
                            await writer.drain()
                await asyncio.sleep(0.2)

        dribbler = asyncio.create_task(dribble())
        try:
            call = await h.dial()  # webhook and media socket both served while 50 clients dribble
            await call.wait_for_agent_audio(timeout=10)
            await call.hangup()
            await h.wait_ended()
        finally:
            dribbler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dribbler
            for _, writer in lorises:
                writer.close()
        print(f"\nslow-loris: {len(lorises)} dribbling webhook clients; real call answered and ended")
    assert len(h.ended) == 1
