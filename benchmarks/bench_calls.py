"""N concurrent simulated phone calls through the real getpatter server, against fake vendors.

Run (from the repository root)::

    python benchmarks/bench_calls.py --mode realtime --calls 200
    python benchmarks/bench_calls.py --mode pipeline --calls 100
    python benchmarks/bench_calls.py --mode pipeline --short          # what CI runs: 3 calls, seconds

Three processes, all on 127.0.0.1, so the server's CPU and memory are measured alone:

* **server**  — ``phone.asgi_app(agent)`` under the production ``ServerRunner`` (uvicorn);
* **vendors** — the fakes of ``tests/fakes`` with fixed latencies: realtime mode runs
  ``FakeOpenAIRealtime`` (mu-law in and out, so audio passes through); pipeline mode runs ``FakeDeepgram``
  (``DeepgramSTT.for_twilio``: mu-law in), ``FakeOpenAIChat`` (``Reply(delay_s=--llm-delay-ms)``) and
  ``FakeElevenLabs`` (``ElevenLabsTTS.for_twilio``: mu-law out, ``first_byte_delay_s=--tts-delay-ms``);
* **callers** (this process) — ``PhoneSimulator`` calls: a signed webhook, the Twilio media stream with
  paced 20 ms mu-law frames, marks and ``clear`` echoed as Twilio does.

Each call: the agent's greeting (``first_message``), then — once every call is up, so all N are live at
once — ``--turns`` caller turns (a tone, the fakes turn it into the next utterance), each answered by the
agent, then the caller hangs up. Figures printed and saved to ``benchmarks/out/<name>.json``:

* **calls fully answered**: greeting heard, every turn answered, no socket error.
* **greeting latency**: ``start`` message sent -> first agent ``media`` message received by the caller.
* **turn latency**: last voiced caller frame sent -> first agent ``media`` message of the reply received.
* **SDK-added latency** (per turn)::

      sdk_added = turn_latency - endpoint - llm_delay - tts_delay      (tts_delay = 0 in realtime mode)
      endpoint  = ceil(endpoint_ms / 20) * 20    # the fake endpointer sees silence in 20 ms frames

  ``endpoint_ms`` is the silence the vendor waits for before ending the turn (Deepgram ``endpointing``,
  realtime ``silence_duration_ms``; ``--endpoint-ms``). What remains is what getpatter, the loopback
  sockets and the fakes' own (small) processing add. Greeting: ``greeting - llm_delay`` (realtime: the
  engine speaks it) or ``greeting - tts_delay`` (pipeline); it includes opening the vendor sockets.
* **underruns**: gaps in the agent's audio *inside* an utterance as the caller plays it on its 20 ms clock
  (an empty or short frame between the first and last agent frame of one reply).
* **server CPU seconds per call-minute** (``utime+stime`` of the server process over the run / summed call
  durations), **RSS**: idle (fresh server), after a warm-up call, peak with N calls; per call =
  ``(peak - warm) / N``. ``import getpatter``: wall time and RSS of a fresh interpreter (median of 5).

Everything is bounded: calls time out, the run has a ``--max-s`` budget, child processes exit when this
one does. Flags: ``--mode realtime|pipeline``, ``--calls N``, ``--turns``, ``--llm-delay-ms``,
``--tts-delay-ms``, ``--endpoint-ms``, ``--ramp-s``, ``--short``, ``--name``, ``--out-dir``,
``--uvloop none|loadgen|all`` (the callers and fakes, or every process, on uvloop: the ``fast`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fakes

HOST = "bench.getpatter.invalid"  # public host for signatures; the simulator connects to 127.0.0.1
NUMBER = "+15550002222"
PROMPT = "You are a helpful receptionist."
GREETING = "Hello, thanks for calling."
REPLY = "Sure, we are open from nine to five. Is there anything else?"
FRAME_MS = 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- /proc ---------------------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (``/proc/<pid>/stat`` fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# -- child processes -----------------------------------------------------------------------------------


def _exit_with_parent(loop: asyncio.AbstractEventLoop, stop: asyncio.Event, max_s: float) -> None:
    parent = os.getppid()
    deadline = time.monotonic() + max_s

    def check() -> None:
        if os.getppid() != parent or time.monotonic() > deadline:
            stop.set()
        else:
            loop.call_later(0.5, check)

    loop.call_later(0.5, check)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def server_role(spec: dict[str, Any]) -> None:
    from getpatter import Patter
    from getpatter.carriers.twilio.config import Twilio
    from getpatter.server.runner import ServerRunner

    phone = Patter(
        carrier=Twilio(spec["account_sid"], spec["auth_token"], base_url=spec["rest_url"]),
        phone_number=NUMBER,
        webhook_url=HOST,
        persist=False,
    )
    if spec["mode"] == "realtime":
        from getpatter.engines._realtime_events import DEFAULT_TURN_DETECTION
        from getpatter.engines.openai_realtime import OpenAIRealtime

        vad = {**DEFAULT_TURN_DETECTION, "silence_duration_ms": spec["endpoint_ms"]}
        engine = OpenAIRealtime(api_key="sk-test", base_url=spec["realtime_url"] + "/v1", turn_detection=vad)
        agent = phone.agent(PROMPT, engine=engine, first_message=GREETING)
    else:
        from getpatter.llm.openai import OpenAILLM
        from getpatter.stt.deepgram import DeepgramSTT
        from getpatter.tts.elevenlabs import ElevenLabsTTS

        agent = phone.agent(
            PROMPT,
            stt=DeepgramSTT.for_twilio(
                "dg-test", base_url=spec["deepgram_url"], endpointing_ms=spec["endpoint_ms"]
            ),
            llm=OpenAILLM(api_key="sk-test", base_url=spec["chat_url"] + "/v1"),
            tts=ElevenLabsTTS.for_twilio(api_key="el-test", base_url=spec["tts_url"]),
            first_message=GREETING,
        )
    app = phone.asgi_app(agent) if not spec.get("trace") else _traced_app(phone, agent)
    runner = ServerRunner(app, None, host="127.0.0.1", port=0)
    task = asyncio.create_task(runner.run())
    port = await runner.ready
    stop = asyncio.Event()
    _exit_with_parent(asyncio.get_running_loop(), stop, spec["max_s"])
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    print(f"READY {json.dumps({'port': port})}", flush=True)
    await stop.wait()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    await runner.stop()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(task, 5)


def _traced_app(phone: Any, agent: Any) -> Any:
    """The same app as ``asgi_app``, plus an observer printing each turn's stage timings to stderr."""
    from getpatter.call.events import TurnCompleted
    from getpatter.server.app import create_app
    from getpatter.server.build import build_state
    from getpatter.server.limits import SocketLimiter

    def trace(bus: Any, ctx: Any) -> None:
        def on_turn(turn: TurnCompleted) -> None:
            t = turn.timings
            base = t.speech_ended or t.llm_dispatched or t.first_audio_sent or 0.0
            marks = {k: round((v - base) * 1000, 1) for k in t.__slots__ if (v := getattr(t, k)) is not None}
            print(f"TRACE {ctx.call_id[:8]} turn {turn.turn_index}: {marks}", file=sys.stderr, flush=True)

        bus.on(TurnCompleted, on_turn)

    state = build_state(
        carrier=phone.carrier,
        webhook_host=HOST,
        agent=agent,
        observers=[*phone._observers(agent, None), trace],
    )
    state.socket_limiter = SocketLimiter(phone._settings.max_sockets_per_ip)  # as asgi_app() does
    return create_app(state)


async def vendors_role(spec: dict[str, Any]) -> None:
    from tests.fakes.server import running

    delay_s = spec["llm_delay_ms"] / 1000.0
    stop = asyncio.Event()
    _exit_with_parent(asyncio.get_running_loop(), stop, spec["max_s"])
    async with contextlib.AsyncExitStack() as stack:
        urls: dict[str, str] = {}
        if spec["mode"] == "realtime":
            from tests.fakes import openai_realtime as rt

            class DelayedSession(rt._Session):
                """Every response starts after the configured model delay; audio appends are not kept."""

                async def stream(self, r: Any) -> None:
                    if delay_s:
                        await asyncio.sleep(delay_s)
                    await super().stream(r)

                async def audio_append(self, event: dict[str, Any]) -> None:
                    await super().audio_append(event)
                    self.conn.audio.clear()
                    if self.conn.events and self.conn.events[-1] is event:
                        self.conn.events.pop()

            rt._Session = DelayedSession  # type: ignore[misc]  # FakeOpenAIRealtime builds sessions by name
            fake = rt.FakeOpenAIRealtime(fallback_text=spec["reply"], ms_per_char=spec["ms_per_char"])
            urls["realtime_url"] = (await stack.enter_async_context(running(fake.app))).http_url
        else:
            from tests.fakes.deepgram import FakeDeepgram
            from tests.fakes.elevenlabs import FakeElevenLabs
            from tests.fakes.openai_chat import FakeOpenAIChat, Reply

            n_utterances = spec["calls"] * (spec["turns"] + 2) + 100
            deepgram = FakeDeepgram(
                utterances=[f"When are you open, number {i}?" for i in range(n_utterances)]
            )
            chat = FakeOpenAIChat(replies=lambda body: Reply(text=spec["reply"], delay_s=delay_s))
            tts = FakeElevenLabs(
                ms_per_char=spec["ms_per_char"], first_byte_delay_s=spec["tts_delay_ms"] / 1000.0
            )
            urls["deepgram_url"] = (await stack.enter_async_context(running(deepgram.app))).ws_url
            urls["chat_url"] = (await stack.enter_async_context(running(chat.app))).http_url
            urls["tts_url"] = (await stack.enter_async_context(running(tts.app))).http_url
        print(f"READY {json.dumps(urls)}", flush=True)
        await stop.wait()


class Child:
    """A role of this script in its own process; ``READY <json>`` on stdout when it is up."""

    def __init__(self, role: str, spec: dict[str, Any], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "w") as log:  # the child's stderr (warnings, tracebacks of dropped sockets)
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--role", role, "--spec", json.dumps(spec)],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                stderr=log,
                text=True,
                cwd=ROOT,
                # Every simulated caller connects from 127.0.0.1: lift the per-IP media socket cap (10).
                env={**os.environ, "PATTER_MAX_SOCKETS_PER_IP": "0"},
            )
        self.pid = self.proc.pid
        self.role = role

    async def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), timeout)
        if not line.startswith("READY "):
            raise RuntimeError(f"{self.role} process failed to start (exit {self.proc.poll()}): {line!r}")
        info: dict[str, Any] = json.loads(line[6:])
        return info

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


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


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.fakes._segmenter import tone
    from tests.fakes.server import running

    from getpatter.simulator import PhoneSimulator
    from getpatter.simulator.twilio import _parse_stream

    bench_call = make_bench_call_class()

    class BenchSimulator(PhoneSimulator):
        async def dial(self, server_url: str, public_host: str, **kwargs: Any) -> Any:
            """As ``PhoneSimulator.dial``, with a ``BenchCall`` and one shared HTTP client."""
            import secrets
            from urllib.parse import urlparse

            from websockets.asyncio.client import connect

            from getpatter.carriers.twilio.signature import compute_signature

            call_sid = "CA" + secrets.token_hex(16)
            form = {
                "AccountSid": self.account_sid,
                "ApiVersion": "2010-04-01",
                "CallSid": call_sid,
                "CallStatus": "ringing",
                "Called": NUMBER,
                "Caller": "+15550001111",
                "Direction": "inbound",
                "From": "+15550001111",
                "To": NUMBER,
            }
            signature = compute_signature(
                self.auth_token, f"https://{public_host}/webhooks/twilio/voice", form
            )
            response = await http.post(
                server_url + "/webhooks/twilio/voice", data=form, headers={"X-Twilio-Signature": signature}
            )
            if response.status_code != 200:
                raise RuntimeError(f"webhook refused: HTTP {response.status_code}")
            stream_url, params = _parse_stream(response.text)
            ws_url = "ws://" + urlparse(server_url).netloc + urlparse(stream_url).path
            ws_signature = compute_signature(self.auth_token, stream_url, {})
            ws = await connect(
                ws_url,
                additional_headers={"X-Twilio-Signature": ws_signature},
                max_size=2**22,
                ping_interval=None,
                compression=None,  # Twilio does not negotiate permessage-deflate
            )
            call = bench_call(ws, call_sid, "MZ" + secrets.token_hex(16))
            self.calls[call_sid] = call
            await call.start(self.account_sid, params)
            return call

    import httpx

    n, turns = args.calls, args.turns
    endpoint_ms = (
        args.endpoint_ms if args.endpoint_ms is not None else (500 if args.mode == "realtime" else 150)
    )
    tts_delay_ms = args.tts_delay_ms if args.mode == "pipeline" else 0
    reply = args.reply
    simulator = BenchSimulator()
    spec: dict[str, Any] = {
        "mode": args.mode,
        "calls": n,
        "turns": turns,
        "llm_delay_ms": args.llm_delay_ms,
        "tts_delay_ms": tts_delay_ms,
        "endpoint_ms": endpoint_ms,
        "ms_per_char": args.ms_per_char,
        "reply": reply,
        "max_s": args.max_s + 30,
        "uvloop": args.uvloop,
    }
    result: dict[str, Any] = {
        "name": args.name,
        "mode": args.mode,
        "command": " ".join(["python", "benchmarks/bench_calls.py", *sys.argv[1:]]),
        "config": {k: v for k, v in spec.items() if k != "max_s"}
        | {"ramp_s": args.ramp_s, "turn_jitter_s": args.turn_jitter_s, "short": args.short},
        "loadavg_before": loadavg(),
    }
    result["import_getpatter"] = measure_import()
    out_dir = Path(args.out_dir)  # created by main()
    vendors = Child("vendors", spec, out_dir / f"{args.name}.vendors.log")
    server: Child | None = None
    http = httpx.AsyncClient(timeout=20.0, limits=httpx.Limits(max_connections=64))
    try:
        spec |= await vendors.ready()
        async with running(simulator.rest_app) as rest:
            spec |= {"rest_url": rest.http_url, "account_sid": simulator.account_sid}
            spec |= {"auth_token": simulator.auth_token, "profile": args.profile, "trace": args.trace}
            server = Child("server", spec, out_dir / f"{args.name}.server.log")
            port = (await server.ready())["port"]
            server_url = f"http://127.0.0.1:{port}"
            await asyncio.sleep(1.0)
            idle_rss = proc_rss_mb(server.pid)
            speech = tone(args.speech_ms, 16000)
            quiet_ms = 300.0
            call_timeout = 20.0 + args.llm_delay_ms / 1000 + tts_delay_ms / 1000

            async def one_call(
                i: int, delay: float, ready: asyncio.Event | None, counter: list[int]
            ) -> CallResult:
                res = CallResult(i)
                await asyncio.sleep(delay)
                t0 = time.monotonic()
                call: Any = None
                try:
                    call = await simulator.dial(server_url, HOST)
                    res.connected = True
                    await asyncio.wait_for(call.got_media.wait(), call_timeout)
                    res.greeting_ms = (call.first_media - call.start_sent) * 1000
                    await call.wait_for_reply(quiet_ms=quiet_ms, timeout=call_timeout)
                    counter[0] += 1
                    if ready is not None:
                        if counter[0] >= n:
                            ready.set()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(ready.wait(), args.ramp_s + call_timeout)
                        await asyncio.sleep(random.uniform(0, args.turn_jitter_s))
                    for _ in range(turns):
                        if call.ended.is_set():
                            break
                        await call.say(speech)
                        await asyncio.wait_for(call.got_media.wait(), call_timeout)
                        res.turn_ms.append((call.first_media - call.speech_end) * 1000)
                        await call.wait_for_reply(quiet_ms=quiet_ms, timeout=call_timeout)
                    if not call.ended.is_set():
                        await call.hang_up()
                except Exception as exc:
                    res.error = f"{type(exc).__name__}: {exc}"[:200]
                    if call is not None:
                        await call.end("bench_error")
                res.duration_s = time.monotonic() - t0
                if call is not None:
                    res.ended_by = call.ended_by
                    if call.errors and not res.error:
                        res.error = call.errors[0][:200]
                    res.underrun_events, res.underrun_ms, res.agent_audio_ms = call.underruns()
                return res

            # warm-up: one call, not counted (first-call imports, connection pools)
            warm = await asyncio.wait_for(one_call(-1, 0.0, None, [0]), 60)
            await asyncio.sleep(0.5)
            warm_rss = proc_rss_mb(server.pid)

            peak = {"rss": warm_rss}
            sampling = True

            async def sample() -> None:
                while sampling:
                    with contextlib.suppress(OSError):
                        peak["rss"] = max(peak["rss"], proc_rss_mb(server.pid))
                    await asyncio.sleep(0.25)

            sampler = asyncio.create_task(sample())
            cpu0, me0, vendors0 = proc_cpu_s(server.pid), proc_cpu_s(os.getpid()), proc_cpu_s(vendors.pid)
            t_start = time.monotonic()
            ready = asyncio.Event()
            counter = [0]
            tasks = [asyncio.create_task(one_call(i, args.ramp_s * i / n, ready, counter)) for i in range(n)]
            done, pending = await asyncio.wait(tasks, timeout=args.max_s)
            for task in pending:
                task.cancel()
            wall = time.monotonic() - t_start
            cpu = proc_cpu_s(server.pid) - cpu0
            caller_cpu = proc_cpu_s(os.getpid()) - me0
            vendors_cpu = proc_cpu_s(vendors.pid) - vendors0
            sampling = False
            await sampler
            results: list[CallResult] = [t.result() for t in done if not t.cancelled()]
    finally:
        await http.aclose()
        if server is not None:
            await asyncio.to_thread(server.stop)
        await asyncio.to_thread(vendors.stop)

    answered = [r for r in results if r.fully_answered(turns)]
    turn_ms = [ms for r in results for ms in r.turn_ms]
    endpoint_q = math.ceil(endpoint_ms / FRAME_MS) * FRAME_MS
    sdk_ms = [ms - endpoint_q - args.llm_delay_ms - tts_delay_ms for ms in turn_ms]
    greet = [r.greeting_ms for r in results if r.greeting_ms is not None]
    greet_fixed = args.llm_delay_ms if args.mode == "realtime" else tts_delay_ms
    call_minutes = sum(r.duration_s for r in results) / 60.0
    errors = sorted({r.error for r in results if r.error})
    result |= {
        "calls": n,
        "calls_completed": len(results),
        "calls_fully_answered": len(answered),
        "answered_pct": round(100.0 * len(answered) / n, 2) if n else 0.0,
        "wall_s": round(wall, 2),
        "greeting_latency_ms": percentiles(greet),
        "greeting_sdk_added_ms": percentiles([g - greet_fixed for g in greet]),
        "turn_latency_ms": percentiles(turn_ms),
        "sdk_added_latency_ms": percentiles(sdk_ms),
        "sdk_added_formula": (
            f"turn_latency - ceil({endpoint_ms}/20)*20 - llm_delay({args.llm_delay_ms})"
            + (f" - tts_delay({tts_delay_ms})" if args.mode == "pipeline" else "")
        ),
        "underruns": {
            "events": sum(r.underrun_events for r in results),
            "gap_ms_total": round(sum(r.underrun_ms for r in results), 1),
            "calls_with_underruns": sum(1 for r in results if r.underrun_events),
            "agent_audio_s_total": round(sum(r.agent_audio_ms for r in results) / 1000.0, 1),
        },
        "server": {
            "cpu_s": round(cpu, 2),
            "call_minutes": round(call_minutes, 2),
            "cpu_s_per_call_minute": round(cpu / call_minutes, 3) if call_minutes else None,
            "cpu_util_pct_of_core": round(100.0 * cpu / wall, 1) if wall else None,
            "idle_rss_mb": round(idle_rss, 1),
            "warm_rss_mb": round(warm_rss, 1),
            "peak_rss_mb": round(peak["rss"], 1),
            "rss_per_call_mb": round((peak["rss"] - warm_rss) / n, 3) if n else None,
        },
        "load_generator": {
            "caller_cpu_s": round(caller_cpu, 2),
            "vendors_cpu_s": round(vendors_cpu, 2),
            "warmup_call_ok": warm.fully_answered(turns),
        },
        "loadavg_after": loadavg(),
        "errors": errors[:10],
        "server_log_lines": _count_lines(out_dir / f"{args.name}.server.log"),
    }
    return result


def _count_lines(path: Path) -> int:
    with contextlib.suppress(OSError):
        return sum(1 for _ in path.open())
    return 0


def print_summary(r: dict[str, Any]) -> None:
    def fmt(p: dict[str, Any]) -> str:
        if not p["n"]:
            return "n=0"
        return f"p50 {p['p50']:.1f}  p95 {p['p95']:.1f}  p99 {p['p99']:.1f}  max {p['max']:.1f}  (n={p['n']})"

    s, imp, u = r["server"], r["import_getpatter"], r["underruns"]
    print(f"bench_calls {r['mode']}: {r['command']}")
    answered = f"{r['calls_fully_answered']}/{r['calls']} ({r['answered_pct']}%)"
    print(f"  calls fully answered   {answered}  wall {r['wall_s']} s")
    print(f"  greeting latency ms    {fmt(r['greeting_latency_ms'])}")
    print(f"  greeting SDK-added ms  {fmt(r['greeting_sdk_added_ms'])}")
    print(f"  turn latency ms        {fmt(r['turn_latency_ms'])}")
    print(f"  SDK-added latency ms   {fmt(r['sdk_added_latency_ms'])}   [{r['sdk_added_formula']}]")
    print(
        f"  underruns              {u['events']} gaps, {u['gap_ms_total']} ms,"
        f" in {u['calls_with_underruns']} calls"
        f" ({u['agent_audio_s_total']} s of agent audio)"
    )
    print(
        f"  server CPU             {s['cpu_s']} s over {s['call_minutes']} call-min = "
        f"{s['cpu_s_per_call_minute']} s/call-min ({s['cpu_util_pct_of_core']}% of a core)"
    )
    print(
        f"  server RSS MB          idle {s['idle_rss_mb']}  warm {s['warm_rss_mb']}  peak {s['peak_rss_mb']}"
        f"  per call {s['rss_per_call_mb']}"
    )
    print(
        f"  import getpatter       {imp['time_ms']} ms, {imp['rss_mb']} MB RSS"
        f" (bare python {imp['bare_interpreter_rss_mb']} MB)"
    )
    lg = r["load_generator"]
    print(
        f"  load generator CPU     callers {lg['caller_cpu_s']} s, vendors {lg['vendors_cpu_s']} s;"
        f" loadavg {r['loadavg_before']} -> {r['loadavg_after']}"
    )
    for e in r["errors"]:
        print(f"  error: {e}")


def run_loop(main: Any, on_uvloop: bool) -> Any:
    """``asyncio.run``, or ``uvloop.run`` when asked for (``pip install uvloop``)."""
    if on_uvloop:
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def main() -> None:
    p = argparse.ArgumentParser(description="Concurrent simulated calls through the real getpatter server.")
    p.add_argument("--mode", choices=("realtime", "pipeline"), default="realtime")
    p.add_argument(
        "--calls", type=int, default=None, help="concurrent calls (default 200 realtime, 100 pipeline)"
    )
    p.add_argument("--turns", type=int, default=2, help="caller turns per call (default 2)")
    p.add_argument(
        "--llm-delay-ms", type=int, default=300, help="model time to first token/audio (default 300)"
    )
    p.add_argument(
        "--tts-delay-ms", type=int, default=100, help="TTS time to first byte, pipeline (default 100)"
    )
    p.add_argument("--endpoint-ms", type=int, default=None, help="vendor end-of-turn silence (SDK defaults)")
    p.add_argument("--speech-ms", type=int, default=800, help="length of each caller turn (a tone)")
    p.add_argument("--ms-per-char", type=int, default=40, help="agent speech length per character of text")
    p.add_argument("--reply", default=REPLY, help="what the agent answers every turn")
    p.add_argument("--ramp-s", type=float, default=None, help="spread the dials over this many seconds")
    p.add_argument(
        "--turn-jitter-s", type=float, default=3.0, help="spread of the first caller turns once all are up"
    )
    p.add_argument("--max-s", type=float, default=300.0, help="hard time budget for the calls")
    p.add_argument("--short", action="store_true", help="3 calls, 1 turn, short replies: a CI smoke run")
    p.add_argument("--name", default=None, help="output name (default calls_<mode>_<N>)")
    p.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "out"))
    p.add_argument("--profile", default=None, help="write a cProfile of the server process to this path")
    p.add_argument("--trace", action="store_true", help="server prints each turn's stage timings (stderr)")
    p.add_argument(
        "--uvloop",
        choices=("none", "loadgen", "all"),
        default="none",
        help="run the callers and fakes (loadgen) or every process (all) on uvloop, if installed",
    )
    p.add_argument("--role", choices=("server", "vendors"), help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role:
        spec = json.loads(args.spec)
        on_uvloop = spec["uvloop"] == "all" or (spec["uvloop"] == "loadgen" and args.role == "vendors")
        run_loop(server_role(spec) if args.role == "server" else vendors_role(spec), on_uvloop)
        return
    if args.short:
        args.calls = args.calls or 3
        args.turns, args.speech_ms, args.max_s = 1, 400, min(args.max_s, 60.0)
        args.turn_jitter_s = min(args.turn_jitter_s, 0.3)
        args.reply = "Sure, nine to five."
        args.llm_delay_ms, args.tts_delay_ms = min(args.llm_delay_ms, 100), min(args.tts_delay_ms, 50)
    if args.calls is None:
        args.calls = 200 if args.mode == "realtime" else 100
    if args.ramp_s is None:
        args.ramp_s = max(0.2, args.calls / 20.0)
    args.name = args.name or f"calls_{args.mode}_{args.calls}"
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = run_loop(run(args), args.uvloop != "none")
    path = out / f"{args.name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)
    print(f"  saved                  {path}")


if __name__ == "__main__":
    main()
