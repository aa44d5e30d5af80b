"""N concurrent simulated phone calls through the real getpatter server, against fake vendors.

Run (from the repository root)::

    python benchmarks/bench_calls.py --mode realtime --calls 200
    python benchmarks/bench_calls.py --mode pipeline --calls 100
    python benchmarks/bench_calls.py --mode pipeline --short          # what CI runs: 3 calls, seconds

Three processes, all on 127.0.0.1, so the server's CPU and memory are measured alone:

* **server**  — ``phone.asgi_app(agent)`` under the production ``ServerRunner`` (uvicorn);
* **vendors** — the fakes of ``tests/fakes``. Realtime mode runs ``FakeOpenAIRealtime`` (mu-law in and
  out, so audio passes through). Pipeline mode runs ``FakeDeepgram``, ``FakeOpenAIChat`` and
  ``FakeElevenLabs`` paced like the vendors: the STT final ``--stt-final-delay-ms`` (100) after
  ``--endpoint-ms`` (300) of caller silence, interim results every 100 ms while speaking; the model's first
  token after ``--llm-delay-ms`` (250) then ``--llm-tokens-per-s`` (50) tokens of 4 characters, ~24 tokens a
  reply; the TTS's first byte after ``--tts-delay-ms`` (150) then ``--tts-chunk-ms`` (100) chunks at
  ``--tts-speed`` (4) x real time. ``--providers readme`` (default) builds the agent as the README
  quickstart does (``DeepgramSTT()``, ``OpenAILLM()``, ``ElevenLabsTTS()``, every default); ``native`` uses
  the carrier-native factories (``DeepgramSTT.for_twilio()``, ``ElevenLabsTTS.for_twilio()``). ``--tts ws``
  swaps in ``ElevenLabsWebSocketTTS`` (same defaults / ``for_twilio()``) against ``FakeElevenLabsWS``, paced
  the same way from the moment a generation is due (the text ended, or a sentence end in auto_mode);
* **callers** (this process) — ``PhoneSimulator`` calls: a signed webhook, the Twilio media stream with
  paced 20 ms mu-law frames, marks and ``clear`` echoed as Twilio does.

Each call: the agent's greeting (``first_message``), then — once every call is up, so all N are live at
once — ``--turns`` caller turns (a tone, the fakes turn it into the next utterance), each answered by the
agent, then the caller hangs up. Figures printed and saved to ``benchmarks/out/<name>.json``:

* **calls fully answered**: greeting heard, every turn answered, no socket error.
* **greeting latency**: ``start`` message sent -> first agent ``media`` message received by the caller.
* **turn latency**: last voiced caller frame sent -> first agent ``media`` message of the reply received.
* **SDK-added latency** (per turn)::

      realtime: sdk_added = turn_latency - endpoint - llm_delay
      pipeline: sdk_added = turn_latency - endpoint - stt_final_delay - llm_first_sentence - tts_delay
      llm_first_sentence = llm_delay + the tokens up to the character after the first sentence
      endpoint  = ceil(endpoint_ms / 20) * 20    # the fake endpointer sees silence in 20 ms frames

  ``endpoint_ms`` is the silence the vendor waits for before ending the turn (Deepgram ``endpointing``,
  realtime ``silence_duration_ms``; ``--endpoint-ms``). What remains is what getpatter, the loopback
  sockets and the fakes' own (small) processing add. Greeting: ``greeting - llm_delay`` (realtime: the
  engine speaks it) or ``greeting - tts_delay`` (pipeline); it includes opening the vendor sockets.
  Pipeline runs also give **SDK-added (measured vendor share)** (``sdk_added_measured``): each turn minus
  the endpoint and what the fakes really took, as they stamped it (``_calls_vendor_clock.py``; on a busy
  machine the fakes overshoot their configured delays, which the formula above counts as SDK time).
* **underruns**: gaps in the agent's audio *inside* an utterance as the caller plays it on its 20 ms clock
  (an empty or short frame between the first and last agent frame of one reply).
* **calibration**: a fixed pure-Python workload timed in this process before any child starts
  (``_calls_calibrate.py``); the CPU figure below is also given normalised to a 1.0 s calibration, to
  compare runs across machines;
* **admission** (``_calls_overload.py``): admitted / fully answered / refused cleanly (``<Reject>``) /
  failed calls, refusals per cause from ``/health``; ``--max-calls C`` serves with
  ``max_concurrent_calls=C``, lag shedding stays at the product's default unless ``--max-loop-lag-ms``;
* **server CPU seconds per call-minute** (``utime+stime`` of the server process over the run / summed
  durations of the calls not refused), **RSS**: idle (fresh server), after a warm-up call, peak with N
  calls; per call = ``(peak - warm) / admitted``. ``import getpatter``: wall time and RSS of a fresh
  interpreter (median of 5).

Everything is bounded: calls time out, the run has a ``--max-s`` budget, child processes exit when this
one does. Flags: ``--mode realtime|pipeline``, ``--calls N``, ``--turns``, ``--llm-delay-ms``,
``--tts-delay-ms``, ``--endpoint-ms``, ``--ramp-s``, ``--short``, ``--name``, ``--out-dir``,
``--uvloop none|loadgen|all`` (the callers and fakes, or every process, on uvloop: the ``fast`` extra),
``--tts http|ws``, ``--max-calls C``, ``--max-loop-lag-ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

# Siblings in benchmarks/ (on sys.path when this script runs); _calls_roles also puts the repository root
# on sys.path for tests.fakes.
from _calls_calibrate import calibrate, normalised
from _calls_caller import (
    FRAME_MS,
    CallResult,
    Refused,
    dial,
    first_sentence_ms,
    make_bench_call_class,
    measure_import,
    percentiles,
)
from _calls_overload import admission_report, health, wait_idle
from _calls_report import print_summary
from _calls_roles import HOST, NUMBER, Child, loadavg, proc_cpu_s, proc_rss_mb, server_role, vendors_role
from _calls_vendor_clock import attribute, load_events

ROOT = Path(__file__).resolve().parent.parent


REPLY = "Sure, we are open from nine to five. Is there anything else?"
#: About 24 tokens (4 characters each, as the fake model streams them): the pipeline's default reply.
PIPELINE_REPLY = (
    "Sure, we are open from nine to five on weekdays. Is there anything else I can help you with?"
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.fakes._segmenter import tone
    from tests.fakes.server import running

    from getpatter.simulator import PhoneSimulator

    bench_call = make_bench_call_class()
    import httpx

    n, turns = args.calls, args.turns
    endpoint_ms = (
        args.endpoint_ms if args.endpoint_ms is not None else (500 if args.mode == "realtime" else 150)
    )
    tts_delay_ms = args.tts_delay_ms if args.mode == "pipeline" else 0
    pipeline = args.mode == "pipeline"
    # The vendors' share of a turn: what remains of the turn latency is what the SDK added.
    llm_share_ms = (
        first_sentence_ms(args.reply, args.llm_delay_ms, args.llm_tokens_per_s)
        if pipeline
        else args.llm_delay_ms
    )
    stt_final_delay_ms = args.stt_final_delay_ms if pipeline else 0
    reply = args.reply
    simulator = PhoneSimulator()
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
        "providers": args.providers,
        "stt_final_delay_ms": stt_final_delay_ms,
        "llm_tokens_per_s": args.llm_tokens_per_s,
        "tts_chunk_ms": args.tts_chunk_ms,
        "tts_speed": args.tts_speed,
        "speech_ms": [args.speech_ms, args.speech_max_ms],
        "tts": args.tts if pipeline else None,
        "max_calls": args.max_calls,
        "max_loop_lag_ms": args.max_loop_lag_ms,
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
    result["calibration"] = calibrate() | {"loadavg": loadavg()}  # idle: no child process started yet
    out_dir = Path(args.out_dir)  # created by main()
    events_path = out_dir / f"{args.name}.vendor_events.json"  # the fakes' own timestamps (pipeline)
    spec["events_path"] = str(events_path) if pipeline else None
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
            speeches = [tone(ms, 16000) for ms in range(args.speech_ms, args.speech_max_ms + 1, 100)]
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
                    call = await dial(simulator, http, bench_call, server_url, HOST, NUMBER, res)
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
                        await call.say(random.choice(speeches))
                        await asyncio.wait_for(call.got_media.wait(), call_timeout)
                        res.turn_ms.append((call.first_media - call.speech_end) * 1000)
                        await call.wait_for_reply(quiet_ms=quiet_ms, timeout=call_timeout)
                    if not call.ended.is_set():
                        await call.hang_up()
                except Refused:  # a clean refusal is settled: the admitted calls need not wait for it
                    counter[0] += 1
                    if ready is not None and counter[0] >= n:
                        ready.set()
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
            health_before = await wait_idle(http, server_url)

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
            health_after = await health(http, server_url)
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
    vendor_ms = endpoint_q + stt_final_delay_ms + llm_share_ms + tts_delay_ms
    sdk_ms = [ms - vendor_ms for ms in turn_ms]
    configured = {"stt": stt_final_delay_ms, "llm": llm_share_ms, "tts": tts_delay_ms}
    calls = [(r.index, r.turn_ms) for r in results]
    measured = attribute(load_events(events_path), calls, endpoint_q, configured) if pipeline else None
    greet = [r.greeting_ms for r in results if r.greeting_ms is not None]
    greet_fixed = args.llm_delay_ms if args.mode == "realtime" else tts_delay_ms
    call_minutes = sum(r.duration_s for r in results if not r.refused) / 60.0  # calls carried
    cpu_per_min = round(cpu / call_minutes, 3) if call_minutes else None
    held = sum(1 for r in results if r.admitted) or n  # refused calls hold no memory
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
            f"turn_latency - ceil({endpoint_ms}/20)*20"
            + (
                f" - stt_final_delay({stt_final_delay_ms}) - llm_first_sentence({llm_share_ms:g})"
                f" - tts_delay({tts_delay_ms}, {args.tts})"
                if pipeline
                else f" - llm_delay({args.llm_delay_ms})"
            )
        ),
        # The vendors' share as the fakes stamped it per turn (pipeline; _calls_vendor_clock.py).
        "sdk_added_measured": measured,
        "underruns": {
            "events": sum(r.underrun_events for r in results),
            "gap_ms_total": round(sum(r.underrun_ms for r in results), 1),
            "calls_with_underruns": sum(1 for r in results if r.underrun_events),
            "agent_audio_s_total": round(sum(r.agent_audio_ms for r in results) / 1000.0, 1),
        },
        "admission": admission_report(results, n, turns, health_before, health_after),
        "server": {
            "cpu_s": round(cpu, 2),
            "call_minutes": round(call_minutes, 2),
            "cpu_s_per_call_minute": cpu_per_min,
            "cpu_s_per_call_minute_normalised": normalised(
                cpu_per_min, result["calibration"]["calibration_s"]
            ),
            "cpu_util_pct_of_core": round(100.0 * cpu / wall, 1) if wall else None,
            "idle_rss_mb": round(idle_rss, 1),
            "warm_rss_mb": round(warm_rss, 1),
            "peak_rss_mb": round(peak["rss"], 1),
            "rss_per_call_mb": round((peak["rss"] - warm_rss) / held, 3) if held else None,
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
    p.add_argument(
        "--providers",
        choices=("readme", "native"),
        default="readme",
        help="pipeline: the README quickstart's defaults (DeepgramSTT(), ElevenLabsTTS()) or the"
        " carrier-native factories (for_twilio()); default readme",
    )
    p.add_argument(
        "--tts",
        choices=("http", "ws"),
        default="http",
        help="pipeline: ElevenLabs over HTTP streaming (ElevenLabsTTS) or the stream-input WebSocket"
        " (ElevenLabsWebSocketTTS); default http",
    )
    p.add_argument("--max-calls", type=int, default=None, help="serve with max_concurrent_calls=C")
    p.add_argument(
        "--max-loop-lag-ms",
        type=int,
        default=None,
        help="PATTER_MAX_LOOP_LAG_MS for the server (default: unset, the product's 200; 0 = off)",
    )
    p.add_argument("--turns", type=int, default=None, help="caller turns per call (2 realtime, 4 pipeline)")
    p.add_argument(
        "--llm-delay-ms", type=int, default=None, help="model time to first token/audio (300 realtime, 250)"
    )
    p.add_argument("--llm-tokens-per-s", type=float, default=50.0, help="pipeline model token rate (50)")
    p.add_argument(
        "--tts-delay-ms", type=int, default=150, help="TTS time to first byte, pipeline (default 150)"
    )
    p.add_argument("--tts-chunk-ms", type=float, default=100.0, help="TTS audio per chunk, pipeline (100)")
    p.add_argument("--tts-speed", type=float, default=4.0, help="TTS chunks at this x real time (4)")
    p.add_argument(
        "--stt-final-delay-ms", type=int, default=100, help="STT final this long after the endpoint (100)"
    )
    p.add_argument(
        "--endpoint-ms", type=int, default=None, help="vendor end-of-turn silence (500 realtime, 300)"
    )
    p.add_argument(
        "--speech-ms", type=int, default=None, help="shortest caller turn, a tone (800 realtime, 1600)"
    )
    p.add_argument("--speech-max-ms", type=int, default=None, help="longest caller turn (2000)")
    p.add_argument(
        "--ms-per-char", type=int, default=None, help="agent speech per character (40 realtime, 30)"
    )
    p.add_argument("--reply", default=None, help="what the agent answers every turn")
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
    pipeline = args.mode == "pipeline"
    if args.tts != "http" and not pipeline:
        p.error("--tts ws needs --mode pipeline")
    if args.max_calls is not None and args.max_calls < 1:
        p.error("--max-calls must be at least 1")
    defaults = (
        {"turns": 4, "llm_delay_ms": 250, "endpoint_ms": 300, "speech_ms": 1600, "ms_per_char": 30}
        | {"speech_max_ms": 2000, "reply": PIPELINE_REPLY}
        if pipeline
        else {"turns": 2, "llm_delay_ms": 300, "endpoint_ms": 500, "speech_ms": 800, "ms_per_char": 40}
        | {"speech_max_ms": None, "reply": REPLY}
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.short:
        args.calls = args.calls or 3
        args.turns, args.speech_ms, args.max_s = 1, 400, min(args.max_s, 60.0)
        args.speech_max_ms = 400
        args.turn_jitter_s = min(args.turn_jitter_s, 0.3)
        args.reply = "Sure, nine to five."
        args.llm_delay_ms, args.tts_delay_ms = min(args.llm_delay_ms, 100), min(args.tts_delay_ms, 50)
    if args.speech_max_ms is None or args.speech_max_ms < args.speech_ms:
        args.speech_max_ms = args.speech_ms
    if args.calls is None:
        args.calls = 200 if args.mode == "realtime" else 100
    if args.ramp_s is None:
        args.ramp_s = max(0.2, args.calls / 20.0)
    label = f"{args.mode}_{args.providers}" + ("_ws" if args.tts == "ws" else "") if pipeline else args.mode
    label += f"_cap{args.max_calls}" if args.max_calls else ""
    args.name = args.name or f"calls_{label}_{args.calls}"
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = run_loop(run(args), args.uvloop != "none")
    path = out / f"{args.name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)
    print(f"  saved                  {path}")


if __name__ == "__main__":
    main()
