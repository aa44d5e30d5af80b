"""bench_calls.py's child processes: the server under test and the fake vendors, plus /proc readings.

Each role runs as ``python benchmarks/bench_calls.py --role <role> --spec <json>`` and prints
``READY <json>`` once listening; it exits when its parent does or its time budget runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _calls_vendor_clock import PROMPT_TAG, VendorClock, tag_reply, utterance_number

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fakes
SCRIPT = Path(__file__).with_name("bench_calls.py")

HOST = "bench.getpatter.invalid"  # public host for signatures; the simulator connects to 127.0.0.1
NUMBER = "+15550002222"
PROMPT = "You are a helpful receptionist."
GREETING = "Hello, thanks for calling."
CLK_TCK = os.sysconf("SC_CLK_TCK")


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

    if spec.get("max_loop_lag_ms") is not None:  # else the product's default (lag shedding at 200 ms)
        os.environ["PATTER_MAX_LOOP_LAG_MS"] = str(spec["max_loop_lag_ms"])
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
        from getpatter.tts.elevenlabs_ws import ElevenLabsWebSocketTTS

        tts_class = ElevenLabsWebSocketTTS if spec["tts"] == "ws" else ElevenLabsTTS
        if spec["providers"] == "native":  # the carrier-native factories, spelled out
            stt = DeepgramSTT.for_twilio("dg-test", base_url=spec["deepgram_url"])
            tts = tts_class.for_twilio(api_key="el-test", base_url=spec["tts_url"])
        else:  # the README quickstart: every provider with its defaults
            stt = DeepgramSTT("dg-test", base_url=spec["deepgram_url"])
            tts = tts_class(api_key="el-test", base_url=spec["tts_url"])
        llm = OpenAILLM(api_key="sk-test", base_url=spec["chat_url"] + "/v1")
        # The call's index (the callers' custom parameter) in the prompt ties LLM requests to calls.
        prompt = PROMPT + PROMPT_TAG
        agent = phone.agent(prompt, stt=stt, llm=llm, tts=tts, first_message=GREETING)
    cap = spec.get("max_calls")
    app = (
        phone.asgi_app(agent, max_concurrent_calls=cap)
        if not spec.get("trace")
        else _traced_app(phone, agent, cap)
    )
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


def _traced_app(phone: Any, agent: Any, max_calls: int | None) -> Any:
    """The same app as ``asgi_app``, plus an observer printing each turn's stage timings to stderr."""
    from getpatter.call.events import TurnCompleted
    from getpatter.server.admission import AdmissionLimits
    from getpatter.server.app import create_app
    from getpatter.server.build import build_state

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
        settings=phone.settings,  # socket cap and watchdog, as asgi_app() does
        admission=AdmissionLimits.resolve(max_calls),
    )
    return create_app(state)


async def vendors_role(spec: dict[str, Any]) -> None:
    from tests.fakes.server import running

    delay_s = spec["llm_delay_ms"] / 1000.0
    clock = VendorClock(spec["reply"])
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
            from tests.fakes.elevenlabs_ws import FakeElevenLabsWS
            from tests.fakes.openai_chat import FakeOpenAIChat, Reply

            n_utterances = spec["calls"] * (spec["turns"] + 2) + 100
            # Paced like the vendors (issue 19): Deepgram ends a turn on >= endpoint_ms of silence and
            # sends the final stt_final_delay_ms later, interim results every 100 ms while speaking; the
            # model's first token after llm_delay_ms, then one 4-character token per 1/llm_tokens_per_s;
            # the TTS's first byte after tts_delay_ms, then tts_chunk_ms chunks at tts_speed x real time.
            deepgram = FakeDeepgram(
                utterances=[f"When are you open, number {i}?" for i in range(n_utterances)],
                endpoint_floor_ms=spec["endpoint_ms"],
                final_delay_s=spec["stt_final_delay_ms"] / 1000.0,
            )
            token_s = 1.0 / spec["llm_tokens_per_s"]

            def reply(body: dict[str, Any]) -> Reply:  # marked with the utterance it answers (letter case)
                users = [m.get("content") for m in body["messages"] if m.get("role") == "user"]
                number = utterance_number(users[-1]) if users and isinstance(users[-1], str) else None
                text = tag_reply(spec["reply"], number)
                return Reply(text=text, delay_s=delay_s, chunk_delay_s=token_s)

            chat = FakeOpenAIChat(replies=reply, chunk_chars=4)
            # The WebSocket variant is paced the same way from the moment a generation is due (the text
            # ended or was flushed, or auto_mode saw a sentence end): first audio after tts_delay_ms.
            tts_fake = clock.tts_ws_class(FakeElevenLabsWS) if spec["tts"] == "ws" else FakeElevenLabs
            tts = tts_fake(
                api_key="el-test",
                ms_per_char=spec["ms_per_char"],
                first_byte_delay_s=spec["tts_delay_ms"] / 1000.0,
                pace_chunk_ms=spec["tts_chunk_ms"],
                pace_speed=spec["tts_speed"],
            )
            # Each fake stamps its own work (_calls_vendor_clock): the vendors' measured share of a turn.
            tts_app = tts.app if spec["tts"] == "ws" else clock.tts_http(tts.app)
            urls["deepgram_url"] = (await stack.enter_async_context(running(clock.stt(deepgram.app)))).ws_url
            urls["chat_url"] = (await stack.enter_async_context(running(clock.llm(chat.app)))).http_url
            urls["tts_url"] = (await stack.enter_async_context(running(tts_app))).http_url
        print(f"READY {json.dumps(urls)}", flush=True)
        await stop.wait()
    if spec.get("events_path"):
        clock.dump(spec["events_path"])


class Child:
    """A role of this script in its own process; ``READY <json>`` on stdout when it is up."""

    def __init__(self, role: str, spec: dict[str, Any], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "w") as log:  # the child's stderr (warnings, tracebacks of dropped sockets)
            self.proc = subprocess.Popen(
                [sys.executable, str(SCRIPT), "--role", role, "--spec", json.dumps(spec)],
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
