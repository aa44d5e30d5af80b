"""``patter demo``: a whole phone call on this machine, with no keys and no phone.

A simulated caller (lines spoken by the local TTS) phones a local agent over the real Twilio protocols:
signed webhook, media WebSocket, mu-law audio, marks and barge-in. The agent hears with Whisper tiny.en,
thinks with a scripted receptionist (which books through a real tool call), and speaks with Pico.

The dashboard's "Call this agent" button talks to the same agent from the browser: after the simulated
call with ``--keep``, or instead of it with ``--browser``.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import TurnCompleted, UserSpeechEnded
from getpatter.carriers import add_softphone_routes
from getpatter.carriers.twilio.config import Twilio
from getpatter.patter import Patter
from getpatter.server.host import ServerHost
from getpatter.server.runner import ServerRunner
from getpatter.tools import tool

CALLER_LINES: tuple[str, ...] = (
    "Hi, what are your opening hours?",
    "How much does a cleaning cost?",
    "Can I book an appointment for Thursday at 3 pm?",
    "That is great, goodbye!",
)
PUBLIC_HOST = "demo.getpatter.invalid"  # never resolved: the simulator connects to 127.0.0.1 directly
AGENT_NUMBER = "+15550002222"
PROMPT = "You are Ava, the receptionist of {clinic}. Be brief and friendly."
GREETING = "Thanks for calling {clinic}, this is Ava. How can I help?"


@tool
def book_appointment(day: str, time: str) -> dict[str, str]:
    """Book a dental appointment.

    Args:
        day: The day of the week.
        time: The time of day.
    """
    return {"confirmation": f"AD-{zlib.crc32(f'{day} {time}'.encode()) % 9000 + 1000}"}


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """Where one answer's wait went, in ms: from the end of the caller's speech to the first agent audio.

    ``end_of_turn``: silence the VAD waited for before deciding the caller had finished; ``transcribe``: the
    Whisper decode (and turn commit); ``reply``: scripted reply, tool call, Pico and the first audio frame.
    """

    total: float
    end_of_turn: float
    transcribe: float
    reply: float


@dataclass
class DemoResult:
    call_id: str = ""
    transcript: list[dict[str, Any]] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    breakdown: list[TurnLatency] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    wav_path: Path | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def p50_ms(self) -> float | None:
        """Median turn latency (end of caller speech to first agent audio); None before any turn."""
        return statistics.median(self.latencies_ms) if self.latencies_ms else None


async def run_demo(
    console: Console | None = None,
    *,
    lines: Sequence[str] = CALLER_LINES,
    save_audio: Path | None = None,
    persist: bool | str | None = None,
    keep: bool = False,
    softphone: bool = False,
) -> DemoResult:
    """Run the demo call; returns what happened (the CLI prints it as it goes). ``softphone``
    (``--browser``): no simulated call; serve the agent to the dashboard's "Call this agent" button until
    Ctrl-C (or cancellation)."""
    from getpatter.dashboard.routes import add_dashboard_routes
    from getpatter.local import LocalSTT, LocalTTS, ScriptedLLM, SileroVAD
    from getpatter.server.app import create_app
    from getpatter.server.build import build_state
    from getpatter.simulator import PhoneSimulator

    console = console or Console()
    result = DemoResult()
    with console.status("Loading the offline speech models (Whisper tiny.en, Pico, Silero)..."):
        stt, tts = LocalSTT(), LocalTTS()
        await stt.warmup()
        caller_voice = LocalTTS(gain_db=0)
        script = () if softphone else lines
        spoken = [b"".join([c async for c in caller_voice.synthesize(line)]) for line in script]
        vad = SileroVAD()

    simulator = PhoneSimulator()
    rest = ServerRunner(simulator.rest_app, None, host="127.0.0.1", port=0)
    rest_task = asyncio.create_task(rest.run())
    rest_port = await rest.ready
    phone = Patter(
        carrier=Twilio(simulator.account_sid, simulator.auth_token, base_url=f"http://127.0.0.1:{rest_port}"),
        phone_number=AGENT_NUMBER,
        webhook_url=PUBLIC_HOST,
        persist=persist,
    )
    agent = phone.agent(
        PROMPT,
        stt=stt,
        llm=ScriptedLLM.demo(),
        tts=tts,
        vad=vad,
        first_message=GREETING,
        variables={"clinic": "Acme Dental"},
        tools=[book_appointment],
    )

    def show(event: dict[str, Any]) -> None:
        if event["role"] == "tool":
            if event.get("tool_result") is not None:
                result.tool_calls.append(event["tool_name"])
                call = f"{event['tool_name']}({event['tool_args']}) -> {event['tool_result']}"
                console.print(f"        [magenta]tool {escape(call)}[/]")
            return
        who = "[bold cyan]Caller[/]" if event["role"] == "user" else "[bold green]Agent [/]"
        console.print(f"{who}  {escape(str(event['text']))}")

    def latency_observer(bus: EventBus, ctx: CallContext) -> None:
        detected: list[float] = []  # when the VAD declared the caller's turn over

        def on_speech_end(_: UserSpeechEnded) -> None:
            detected.append(time.monotonic())

        def on_turn(turn: TurnCompleted) -> None:
            t = turn.timings
            if not (turn.user_text and t.speech_ended and t.first_audio_sent):
                return
            final = t.transcript_final or t.speech_ended
            eot = max([d for d in detected if t.speech_ended <= d <= final] or [t.speech_ended])
            ms = TurnLatency(
                total=(t.first_audio_sent - t.speech_ended) * 1000.0,
                end_of_turn=(eot - t.speech_ended) * 1000.0,
                transcribe=(final - eot) * 1000.0,
                reply=(t.first_audio_sent - final) * 1000.0,
            )
            result.latencies_ms.append(ms.total)
            result.breakdown.append(ms)
            console.print(
                f"        [dim]turn {turn.turn_index}: {ms.total:.0f} ms from end of speech to reply "
                f"(end of turn {ms.end_of_turn:.0f}, transcribe {ms.transcribe:.0f}, "
                f"reply and voice {ms.reply:.0f})[/]"
            )

        bus.on(UserSpeechEnded, on_speech_end)
        bus.on(TurnCompleted, on_turn)

    async def on_call_end(data: dict[str, Any]) -> None:
        result.call_id = data["call_id"]
        result.transcript = data["transcript"]
        result.ended.set()

    state = build_state(
        carrier=phone.carrier,
        webhook_host=PUBLIC_HOST,
        agent=agent,
        on_transcript=show,
        on_call_end=on_call_end,
        observers=[*phone._observers(agent, None), latency_observer],  # metrics, call log
    )
    app = create_app(state)
    add_dashboard_routes(app, phone.metrics_store)  # loopback only: no token needed
    add_softphone_routes(app, ServerHost(state))  # "Call this agent", same loopback rule
    server = ServerRunner(app, state, host="127.0.0.1", port=0)
    server_task = asyncio.create_task(server.run())
    port = await server.ready
    if softphone:
        console.print(
            f"Open [bold]http://127.0.0.1:{port}/[/] and click [bold]Call this agent[/] to talk to Ava "
            "(Acme Dental's receptionist) from your browser. Ctrl-C to stop."
        )
    else:
        console.print(f"[dim]getpatter is answering on http://127.0.0.1:{port}; placing a simulated call.[/]")
        console.print(f"[dim]Live dashboard: http://127.0.0.1:{port}/[/]\n")
    try:
        if softphone:
            await server_task  # until Ctrl-C
            await phone.flush_logs()
            return result
        call = await simulator.dial(f"http://127.0.0.1:{port}", PUBLIC_HOST)
        started = time.monotonic()
        await call.wait_for_reply(timeout=30)
        for audio in spoken:
            if call.ended.is_set():
                break
            await call.say(audio)
            with contextlib.suppress(TimeoutError):
                await call.wait_for_reply(timeout=30)
        if not call.ended.is_set():
            await call.hang_up()
        await asyncio.wait_for(result.ended.wait(), 15)
        console.print(f"\n[bold]Call finished[/] after {time.monotonic() - started:.1f} s.")
        if result.p50_ms is not None:
            console.print(
                f"Turn latency (end of caller speech to first agent audio): p50 {result.p50_ms:.0f} ms, "
                f"max {max(result.latencies_ms):.0f} ms over {len(result.latencies_ms)} turns."
            )
        if save_audio is not None:
            await asyncio.to_thread(save_audio.write_bytes, call.stereo_wav())
            result.wav_path = save_audio
            console.print(f"Saved the call as a stereo WAV (left caller, right agent): {save_audio}")
        await phone.flush_logs()
        if phone.log_root is not None:
            result.log_dir = phone.log_root
            console.print(f"Call log written under {phone.log_root / 'calls'}")
        if keep:
            console.print(
                f"[dim]--keep: the dashboard stays up at http://127.0.0.1:{port}/ until Ctrl-C; click "
                "'Call this agent' there to talk to the agent yourself.[/]"
            )
            await server_task
    finally:
        await server.stop()
        await rest.stop()
        for task in (server_task, rest_task):
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 10)
    return result
