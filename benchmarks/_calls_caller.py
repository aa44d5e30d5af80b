"""bench_calls.py's caller side: a simulated call that timestamps agent audio, and the figures' helpers."""

from __future__ import annotations

import asyncio
import base64
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

FRAME_MS = 20


class Refused(Exception):
    """The voice webhook answered ``<Reject>`` as its first verb: Twilio never answers such a call, so the
    caller hears busy and no media socket is opened (the server's clean refusal, ``server/admission.py``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"refused by the server: <Reject reason={reason!r}>")
        self.reason = reason


async def dial(
    simulator: Any,
    http: Any,
    bench_call: Any,
    server_url: str,
    public_host: str,
    number: str,
    res: CallResult,
) -> Any:
    """As ``PhoneSimulator.dial``, with a ``BenchCall`` and one shared HTTP client, and a ``<Reject>``
    answer taken on the carrier's terms: ``res.refused`` set and :class:`Refused` raised, no socket opened.
    ``res.admitted`` is set once the webhook answered ``<Connect><Stream>``."""
    import secrets
    from urllib.parse import urlparse

    from tests.fakes.twilio import parse_reject
    from websockets.asyncio.client import connect

    from getpatter.carriers.twilio.signature import compute_signature
    from getpatter.simulator.twilio import _parse_stream

    call_sid = "CA" + secrets.token_hex(16)
    form = {
        "AccountSid": simulator.account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": number,
        "Caller": "+15550001111",
        "Direction": "inbound",
        "From": "+15550001111",
        "To": number,
    }
    signature = compute_signature(simulator.auth_token, f"https://{public_host}/webhooks/twilio/voice", form)
    response = await http.post(
        server_url + "/webhooks/twilio/voice", data=form, headers={"X-Twilio-Signature": signature}
    )
    if response.status_code != 200:
        raise RuntimeError(f"webhook refused: HTTP {response.status_code}")
    reason = parse_reject(response.text)  # strict: a <Reject> Twilio would not honour raises
    if reason is not None:
        res.refused = reason
        raise Refused(reason)
    stream_url, params = _parse_stream(response.text)
    res.admitted = True
    ws_url = "ws://" + urlparse(server_url).netloc + urlparse(stream_url).path
    ws_signature = compute_signature(simulator.auth_token, stream_url, {})
    ws = await connect(
        ws_url,
        additional_headers={"X-Twilio-Signature": ws_signature},
        max_size=2**22,
        ping_interval=None,
        compression=None,  # Twilio does not negotiate permessage-deflate
    )
    call = bench_call(ws, call_sid, "MZ" + secrets.token_hex(16))
    simulator.calls[call_sid] = call
    # The call's index as a custom parameter: the agent's prompt carries it (pipeline vendor timing).
    await call.start(simulator.account_sid, params | {"bench_call": str(res.index)})
    return call


# -- the caller side -----------------------------------------------------------------------------------


def make_bench_call_class() -> Any:
    from getpatter.simulator.call import FRAME, SILENCE, SimulatedCall

    class BenchCall(SimulatedCall):
        """A ``SimulatedCall`` that also timestamps agent audio and records which clock ticks played it."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tick_no = 0
            self.audio_ticks: list[tuple[int, int]] = []  # (tick, bytes played) for ticks with agent audio
            self.turn_ticks: list[int] = []  # tick at which each caller turn started
            self.start_sent = 0.0
            self.speech_end = 0.0  # monotonic time the last frame of the latest say() was sent
            self.first_media: float | None = None
            self.got_media = asyncio.Event()
            self.errors: list[str] = []
            self._prefix = '{"event":"media","streamSid":"' + self.stream_sid + '","sequenceNumber":"'

        async def start(self, account_sid: str, params: dict[str, str]) -> None:
            self.expect_reply()
            self.start_sent = time.monotonic()
            await super().start(account_sid, params)

        def expect_reply(self) -> None:
            self.first_media = None
            self.got_media.clear()

        async def say(self, pcm16_16k: bytes) -> None:
            self.turn_ticks.append(self.tick_no)
            await super().say(pcm16_16k)

        async def _clock(self) -> None:
            start = time.monotonic()
            tick = 0
            try:
                while not self.ended.is_set():
                    frame, done = self._speech.popleft() if self._speech else (SILENCE, None)
                    tick += 1
                    self.tick_no = tick
                    payload = base64.b64encode(frame).decode()
                    await self.ws.send(
                        f'{self._prefix}{self._next_seq()}","media":{{"track":"inbound","chunk":"{tick}",'
                        f'"timestamp":"{tick * 20}","payload":"{payload}"}}}}'
                    )
                    if done is not None and not done.done():
                        self.speech_end = time.monotonic()
                        self.expect_reply()
                        done.set_result(None)
                    played = bytes(self._agent[:FRAME])
                    del self._agent[:FRAME]
                    if played:
                        self.last_agent_audio = time.monotonic()
                        self._agent_played_pos += len(played)
                        self.audio_ticks.append((tick, len(played)))
                    await self._echo_played_marks()
                    self._tick.set()
                    await asyncio.sleep(max(0.0, start + tick * 0.02 - time.monotonic()))
            except Exception as exc:
                if not self.ended.is_set():
                    self.errors.append(f"clock: {exc!r}")
                await self.end("socket")

        async def _listen(self) -> None:
            import orjson

            try:
                async for raw in self.ws:
                    msg: dict[str, Any] = orjson.loads(raw)
                    kind = msg.get("event")
                    if kind == "media":
                        if self.first_media is None:
                            self.first_media = time.monotonic()
                            self.got_media.set()
                        audio = base64.b64decode(msg["media"]["payload"])
                        self._agent += audio
                        self._agent_received += len(audio)
                    elif kind == "mark":
                        self._marks.append((self._agent_received, msg["mark"]["name"]))
                    elif kind == "clear":
                        self._agent_played_pos = self._agent_received
                        self._agent.clear()
                        await self._echo_played_marks()
            except Exception as exc:
                if not self.ended.is_set():
                    self.errors.append(f"listen: {exc!r}")
            await self.end("server")

        def underruns(self) -> tuple[int, float, float]:
            """(gap events, gap ms, agent audio ms) inside utterances, an utterance being the agent audio
            between two caller turns."""
            bounds = [*self.turn_ticks, 1 << 62]
            events, gap_ms, audio_ms = 0, 0.0, 0.0
            groups: list[list[tuple[int, int]]] = [[] for _ in bounds]
            b = 0
            for t, n in self.audio_ticks:
                while t > bounds[b]:
                    b += 1
                groups[b].append((t, n))
            for group in groups:
                for i, (t, n) in enumerate(group):
                    audio_ms += n / 8.0
                    if i + 1 == len(group):
                        break
                    missing = (group[i + 1][0] - t - 1) * FRAME_MS + (FRAME - n) / 8.0
                    if missing > 0:
                        events += 1
                        gap_ms += missing
            return events, gap_ms, audio_ms

    return BenchCall


@dataclass
class CallResult:
    index: int
    admitted: bool = False  # the webhook answered <Connect><Stream>
    refused: str = ""  # the webhook answered <Reject reason=...> (a clean refusal)
    connected: bool = False
    greeting_ms: float | None = None
    turn_ms: list[float] = field(default_factory=list)
    duration_s: float = 0.0
    ended_by: str = ""
    error: str = ""
    underrun_events: int = 0
    underrun_ms: float = 0.0
    agent_audio_ms: float = 0.0

    def fully_answered(self, turns: int) -> bool:
        return (
            self.connected
            and self.greeting_ms is not None
            and len(self.turn_ms) == turns
            and not self.error
            and self.ended_by == "caller"
        )


def first_sentence_ms(reply: str, delay_ms: float, tokens_per_s: float, chars_per_token: int = 4) -> float:
    """When the fake model has streamed the reply's first sentence *and* the character after it (the
    chunker needs that to know the sentence ended): the model's share of the time to first audio."""
    ends = [i for i in (reply.find(c) for c in ".?!") if i >= 0]
    if not ends:
        return delay_ms + (len(reply) // chars_per_token) * 1000.0 / tokens_per_s
    # Content token k (0-based) arrives at delay + (k + 1) / tokens_per_s (the role chunk comes first).
    k = min((min(ends) + 1) // chars_per_token, (len(reply) - 1) // chars_per_token)
    return delay_ms + (k + 1) * 1000.0 / tokens_per_s


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    s = sorted(values)

    def pct(p: float) -> float:
        k = (len(s) - 1) * p / 100.0
        lo, hi = math.floor(k), math.ceil(k)
        return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 2)

    return {
        "n": len(s),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(s[-1], 2),
        "mean": round(sum(s) / len(s), 2),
    }


def measure_import(runs: int = 5) -> dict[str, float]:
    code = (
        "import time\nt = time.perf_counter()\nimport getpatter\ndt = time.perf_counter() - t\n"
        "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1]\n"
        "print(dt * 1000, int(rss) / 1024)"
    )
    bare = (
        "print(0, int([l for l in open('/proc/self/status') if l.startswith('VmRSS:')][0].split()[1]) / 1024)"
    )
    times, rss = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
        )
        t, r = out.stdout.split()
        times.append(float(t))
        rss.append(float(r))
    base = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True, check=True, cwd="/")
    base_rss = float(base.stdout.split()[1])
    times.sort()
    rss.sort()
    return {
        "time_ms": round(times[len(times) // 2], 1),
        "rss_mb": round(rss[len(rss) // 2], 1),
        "bare_interpreter_rss_mb": round(base_rss, 1),
    }
