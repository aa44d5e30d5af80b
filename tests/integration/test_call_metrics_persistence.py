"""Whole calls with the metrics collector, the dashboard store and the call-log writer attached.

The server is built the way ``tests/integration/harness.py`` builds it, but through
``build_state(..., observers=[...])`` so our observers ride on every call's event bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from getpatter import Patter
from getpatter.carriers.twilio.config import Twilio
from getpatter.dashboard.persistence import CallLogWriter, agent_snapshot
from getpatter.dashboard.store import MetricsStore
from getpatter.llm.openai import OpenAILLM
from getpatter.metrics.collector import MetricsCollector
from getpatter.metrics.model import CallMetrics
from getpatter.metrics.pricing import merge_pricing
from getpatter.server.app import create_app
from getpatter.server.build import build_state
from getpatter.settings import Settings
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.openai_chat import FakeOpenAIChat
from tests.fakes.server import Running, _Server, running
from tests.fakes.twilio import FakeCall, FakeTwilio
from tests.integration.harness import NUMBER, PUBLIC_HOST

GREETING = "Hello, thanks for calling."


@dataclass
class Rig:
    twilio: FakeTwilio
    server: Running
    store: MetricsStore
    root: Path
    ended: list[dict[str, Any]] = field(default_factory=list)
    per_turn: list[dict[str, Any]] = field(default_factory=list)
    ended_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def dial(self) -> FakeCall:
        return await self.twilio.start_inbound_call(self.server.http_url, PUBLIC_HOST)


@contextlib.asynccontextmanager
async def fakes(utterances: list[str], replies: list[str]) -> AsyncIterator[tuple[Any, ...]]:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    deepgram = FakeDeepgram(utterances=utterances)
    llm = FakeOpenAIChat(replies=list(replies))
    tts = FakeElevenLabs(ms_per_char=10.0)
    async with (
        running(twilio.app) as twilio_srv,
        running(deepgram.app) as dg_srv,
        running(llm.app) as llm_srv,
        running(tts.app) as tts_srv,
    ):
        try:
            yield twilio, twilio_srv, deepgram, dg_srv, llm, llm_srv, tts, tts_srv
        finally:
            for call in list(twilio.calls.values()):
                with contextlib.suppress(Exception):
                    await call.aclose()
            await twilio.aclose()


def build_app(parts: tuple[Any, ...], root: Path, rig_ref: list[Rig], store: MetricsStore) -> Any:
    twilio, twilio_srv, deepgram, dg_srv, llm, llm_srv, tts, tts_srv = parts
    phone = Patter(
        carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=twilio_srv.http_url),
        phone_number=NUMBER,
        webhook_url=PUBLIC_HOST,
    )
    agent = phone.agent(
        "You are a helpful receptionist.",
        stt=DeepgramSTT(api_key=deepgram.api_key, base_url=dg_srv.ws_url),
        llm=OpenAILLM(api_key=llm.api_key, base_url=llm_srv.http_url + "/v1"),
        tts=ElevenLabsTTS(api_key=tts.api_key, base_url=tts_srv.http_url),
        first_message=GREETING,
    )

    async def on_metrics(data: dict[str, Any]) -> None:
        rig_ref[0].per_turn.append(data)

    async def on_call_end(data: dict[str, Any]) -> None:
        rig_ref[0].ended.append(data)
        rig_ref[0].ended_event.set()

    collector = MetricsCollector(merge_pricing(), on_metrics=on_metrics, telephony_provider="twilio")
    writer = CallLogWriter(root, Settings(redact_phone="mask"), agent=agent_snapshot(agent))
    state = build_state(
        carrier=phone._carrier,
        webhook_host=PUBLIC_HOST,
        agent=agent,
        on_call_end=on_call_end,
        observers=[collector.observer, store.store_observer, writer.observer],
    )
    return create_app(state)


async def _turn(call: FakeCall, ms: float) -> None:
    await call.say_tone(ms)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)


def _all_files_parse(root: Path) -> list[Path]:
    """Every file under the call dirs parses (metadata as one JSON object, JSONL line by line)."""
    files = sorted(p for p in (root / "calls").rglob("*") if p.is_file())
    for path in files:
        assert not path.name.endswith(".tmp"), f"leftover temp file {path}"
        text = path.read_text("utf-8")
        if path.suffix == ".jsonl":
            assert text.endswith("\n"), f"{path} ends with a partial line"
            for line in text.splitlines():
                assert isinstance(json.loads(line), dict)
        else:
            assert isinstance(json.loads(text), dict)
    return files


async def test_two_turn_call_is_measured_priced_persisted_and_hydrated(tmp_path: Path) -> None:
    store = MetricsStore()
    rig_ref: list[Rig] = []
    async with fakes(
        ["What are your opening hours?", "Thanks, goodbye."], ["Nine to five.", "Bye now."]
    ) as parts:
        app = build_app(parts, tmp_path, rig_ref, store)
        async with running(app) as server:
            rig = Rig(parts[0], server, store, tmp_path)
            rig_ref.append(rig)
            call = await rig.dial()
            await call.wait_for_agent_audio(timeout=5)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await _turn(call, 600)
            await _turn(call, 500)
            await call.hangup()
            await asyncio.wait_for(rig.ended_event.wait(), 10)

    # on_call_end got real CallMetrics: three turns (greeting + two answers), cost and latency.
    metrics = rig.ended[0]["metrics"]
    assert isinstance(metrics, CallMetrics)
    assert metrics.call_id == call.sid
    assert [t.agent_text for t in metrics.turns] == [
        "Hello, thanks for calling.",
        "Nine to five.",
        "Bye now.",
    ]
    assert [t.user_text for t in metrics.turns] == ["", "What are your opening hours?", "Thanks, goodbye."]
    assert [t.tts_characters for t in metrics.turns] == [26, 13, 8]
    assert metrics.stt_provider == "deepgram" and metrics.tts_provider == "elevenlabs"
    assert metrics.llm_provider == "openai" and metrics.llm_model == "gpt-4o-mini"
    assert metrics.telephony_provider == "twilio" and metrics.provider_mode == "pipeline"
    assert metrics.cost.stt > 0 and metrics.cost.tts > 0 and metrics.cost.llm > 0
    assert metrics.cost.telephony == 0.0085  # Twilio bills the started minute
    parts_sum = metrics.cost.stt + metrics.cost.tts + metrics.cost.llm + metrics.cost.telephony
    assert abs(metrics.cost.total - parts_sum) < 1e-6
    answered = metrics.turns[1:]
    assert all(t.latency.total_ms > 0 and t.latency.stt_ms >= 0 for t in answered)
    assert all(t.latency.llm_ttft_ms is not None and t.latency.llm_ttft_ms > 0 for t in answered)
    assert metrics.latency_avg.total_ms > 0 and metrics.latency_p95.total_ms >= metrics.latency_p50.total_ms
    # on_metrics fired once per turn with the running cost.
    assert [d["turn"].turn_index for d in rig.per_turn] == [0, 1, 2]
    assert all(d["call_id"] == call.sid and d["cost_so_far"].total >= 0 for d in rig.per_turn)

    # The store has the completed call with its turns and metrics.
    stored = store.get_call(call.sid)
    assert stored is not None and stored["status"] == "completed"
    assert stored["metrics"]["cost"]["total"] == metrics.cost.total
    assert len(stored["turns"]) == 3 and store.get_active_calls() == []

    # The files on disk, with their documented fields.
    files = _all_files_parse(tmp_path)
    (call_dir,) = {p.parent for p in files}
    assert call_dir.name == call.sid and call_dir.parent.parent.parent.parent.name == "calls"
    meta = json.loads((call_dir / "metadata.json").read_text())
    assert meta["schema_version"] == "1.0" and meta["call_id"] == call.sid
    assert meta["status"] == "completed" and meta["turns"] == 3
    assert meta["caller"] == "***1111" and meta["callee"] == "***2222"  # masked by default
    assert meta["started_at"].endswith("Z") and meta["ended_at"].endswith("Z")
    assert meta["duration_ms"] == round(metrics.duration_seconds * 1000, 1)
    assert meta["telephony_provider"] == "twilio" and meta["provider_mode"] == "pipeline"
    assert meta["agent"]["provider"] == "pipeline" and meta["agent"]["stt"] == "deepgram"
    assert meta["cost"] == metrics.cost.to_dict()
    assert meta["latency"]["p50_ms"] == metrics.latency_p50.total_ms
    assert meta["latency"]["avg"] == metrics.latency_avg.to_dict()
    rows = [json.loads(line) for line in (call_dir / "transcript.jsonl").read_text().splitlines()]
    assert [r["turn_index"] for r in rows] == [0, 1, 2]
    assert rows[1]["user_text"] == "What are your opening hours?" and rows[1]["agent_text"] == "Nine to five."
    assert set(rows[1]) >= {
        "schema_version",
        "ts",
        "latency",
        "stt_audio_seconds",
        "tts_characters",
        "timestamp",
    }
    assert rows[1]["latency"] == metrics.turns[1].latency.to_dict()

    # A fresh store rebuilds the call from disk, once.
    fresh = MetricsStore()
    assert fresh.hydrate(tmp_path) == 1
    assert await fresh.hydrate_async(tmp_path) == 0
    (loaded,) = fresh.get_calls()
    assert loaded["call_id"] == call.sid and loaded["caller"] == "***1111"
    assert loaded["metrics"]["cost"] == metrics.cost.to_dict()
    assert [(t["role"], t["text"]) for t in loaded["transcript"]] == [
        ("assistant", "Hello, thanks for calling."),
        ("user", "What are your opening hours?"),
        ("assistant", "Nine to five."),
        ("user", "Thanks, goodbye."),
        ("assistant", "Bye now."),
    ]


class ThreadServer:
    """Our app on its own event loop in a thread, so a "crash" can stop exactly its tasks: every task
    is cancelled and the loop stops at once (no graceful call end), while the fakes keep running."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.executor = ThreadPoolExecutor(max_workers=4)  # the loop's to_thread pool, to join later
        self.loop.set_default_executor(self.executor)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws_ping_interval=None)
        self.server = _Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self.server.serve(sockets=[self.sock]))
        self.loop.run_forever()

    async def start(self) -> Running:
        self.thread.start()
        while not self.server.started:
            await asyncio.sleep(0.01)
        return Running("127.0.0.1", self.port)

    def crash(self) -> None:
        def kill() -> None:
            for task in asyncio.all_tasks(self.loop):
                task.cancel()
            self.loop.stop()

        self.loop.call_soon_threadsafe(kill)
        self.thread.join(5)
        self.executor.shutdown(wait=True)  # writes already handed to the OS finish, as they would

    async def cleanup(self) -> None:
        """After the checks: let the cancelled tasks unwind so nothing leaks into other tests."""

        def unwind() -> None:
            asyncio.set_event_loop(self.loop)
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

        thread = threading.Thread(target=unwind, daemon=True)
        thread.start()
        await asyncio.to_thread(thread.join, 10)
        self.sock.close()


async def test_server_killed_mid_call_leaves_only_parseable_files(tmp_path: Path) -> None:
    store = MetricsStore()
    rig_ref: list[Rig] = []
    async with fakes(["Tell me a long story."], ["Once upon a time. " * 20]) as parts:
        server = ThreadServer(build_app(parts, tmp_path, rig_ref, store))
        rig = Rig(parts[0], await server.start(), store, tmp_path)
        rig_ref.append(rig)
        call = await rig.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        server.crash()  # the agent is mid-answer
        try:
            files = _all_files_parse(tmp_path)
            meta = json.loads(next(p for p in files if p.name == "metadata.json").read_text())
            assert meta["call_id"] == call.sid and meta["ended_at"] is None  # it never ended cleanly
            rows = (tmp_path / "calls").rglob("transcript.jsonl")
            assert [json.loads(r)["turn_index"] for p in rows for r in p.read_text().splitlines()] == [0]
            assert rig.ended == []
            assert MetricsStore().hydrate(tmp_path) == 1  # the crashed call is still listed
        finally:
            await call.aclose()
            await server.cleanup()
