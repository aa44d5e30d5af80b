"""Speech-to-speech mode: caller audio to the engine, engine audio to the caller, tools in between.

The engine does turn-taking itself (server VAD). We keep what only the carrier side can know: how much
of each agent item the caller actually heard, so a barge-in truncates the engine's memory to exactly that
(``audio_end_ms`` from the playout's marks), and the history holds only heard words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any

from getpatter.audio.convert import FormatConverter
from getpatter.audio.format import AudioFormat
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext, HistoryEntry
from getpatter.call.events import (
    AgentUtterance,
    DtmfReceived,
    ErrorOccurred,
    Interrupted,
    TurnCompleted,
    TurnTimings,
    UsageRecorded,
    UserSpeechEnded,
    UserSpeechStarted,
    UserTranscript,
)
from getpatter.call.playout import Playout
from getpatter.call.tasks import BackgroundTasks, cancel_and_wait
from getpatter.call.turn_clock import Turn, first
from getpatter.engines.base import (
    AgentTranscript,
    AudioOut,
    CallerSpeechStarted,
    CallerSpeechStopped,
    Engine,
    EngineConfig,
    EngineError,
    EngineSession,
    ResponseDone,
    ToolCall,
)
from getpatter.engines.base import UserTranscript as EngineUserTranscript
from getpatter.errors import PatterError
from getpatter.guardrails import Guardrail, first_blocking

log = logging.getLogger("getpatter.realtime")

ToolRunner = Callable[[str, str], Awaitable[str]]


@dataclass(slots=True)
class _Item:
    item_id: str
    start_ms: float  # where its audio starts in the playout's current utterance
    text: str = ""
    audio_ms: float = 0.0


class RealtimeConversation:
    def __init__(
        self,
        *,
        ctx: CallContext,
        engine: Engine,
        config: EngineConfig,
        playout: Playout,
        wire_format: AudioFormat,
        bus: EventBus,
        run_tool: ToolRunner | None = None,
        guardrails: Sequence[Guardrail] = (),
        on_fatal: Callable[[str], Awaitable[None]] | None = None,
        on_engine_closed: Callable[[], Awaitable[None]] | None = None,
        after_utterance: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.ctx = ctx
        self._engine = engine
        self._config = config
        self._playout = playout
        self._wire = wire_format
        self._bus = bus
        self._run_tool = run_tool
        self._on_fatal = on_fatal
        self._on_engine_closed = on_engine_closed
        self._finished_ids: set[str] = set()  # items already recorded or cut: later text is a correction
        self._pending_user: list[str] = []  # caller turns heard while agent items were still playing
        self._after_utterance = after_utterance
        self._guardrails = tuple(guardrails)
        self._blocked: set[str] = set()  # item ids a guardrail stopped
        self.history: list[HistoryEntry] = []
        self._session: EngineSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._to_engine: FormatConverter | None = None
        self._from_engine: FormatConverter | None = None
        self._item: _Item | None = None  # the item whose audio is arriving now
        self._playing: list[_Item] = []  # items queued in the current playout utterance, not yet recorded
        self._turn_index = 0
        self._turn = Turn()
        self._tasks = BackgroundTasks(log)
        self._closed = False
        self._lost = False

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        session = await self._engine.connect(self._config)
        self._session = session
        if session.input_format != self._wire:
            self._to_engine = FormatConverter(self._wire, session.input_format)
        if session.output_format != self._wire:
            self._from_engine = FormatConverter(session.output_format, self._wire)
        self._reader = asyncio.create_task(self._read(), name=f"engine-{self.ctx.call_id}")
        if self._config.first_message:
            await session.say(self._config.first_message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._playing and self._playout.speaking:
            await self._barge_in(record_only=True)
        await cancel_and_wait(self._reader)
        await self._tasks.cancel()
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()

    @property
    def agent_busy(self) -> bool:
        return bool(self._playing) or self._playout.speaking

    # -- caller side ---------------------------------------------------------------------------------
    async def on_audio(self, wire: bytes) -> None:
        if self._session is None or self._lost:
            return
        try:
            await self._session.send_audio(wire if self._to_engine is None else self._to_engine.process(wire))
        except PatterError:
            self._lost = True  # the reader reports the loss and ends the call; the audio path stays quiet

    async def on_dtmf(self, digit: str) -> None:
        self._bus.emit(DtmfReceived(call_id=self.ctx.call_id, digit=digit))
        text = f"[DTMF: {digit}]"
        self._user_said(text)
        if self._session is not None:
            await self._session.send_user_text(text)

    # -- engine side ---------------------------------------------------------------------------------
    async def _read(self) -> None:
        assert self._session is not None
        try:
            async for event in self._session:
                if isinstance(event, AudioOut):
                    self._on_audio_out(event)
                elif isinstance(event, AgentTranscript):
                    self._on_agent_text(event)
                elif isinstance(event, CallerSpeechStarted):
                    self._turn.timings = TurnTimings(speech_started=time.monotonic())
                    self._bus.emit(UserSpeechStarted(call_id=self.ctx.call_id))
                    if self._playout.speaking:
                        await self._barge_in()
                elif isinstance(event, CallerSpeechStopped):
                    self._turn.timings = replace(self._turn.timings, speech_ended=time.monotonic())
                    self._bus.emit(UserSpeechEnded(call_id=self.ctx.call_id, duration_ms=0.0))
                elif isinstance(event, EngineUserTranscript):
                    if event.text.strip():
                        t = self._turn.timings
                        now = time.monotonic()
                        self._turn.timings = replace(t, transcript_final=first(t.transcript_final, now))
                        self._user_said(event.text.strip())
                elif isinstance(event, ToolCall):
                    self._spawn(self._call_tool(event), f"tool {event.name}")
                elif isinstance(event, ResponseDone):
                    self._on_response_done(event)
                elif isinstance(event, EngineError):
                    log.warning("call %s: engine error: %s", self.ctx.call_id, event.message)
                    self._bus.emit(
                        ErrorOccurred(
                            call_id=self.ctx.call_id,
                            error_code="provider_error",
                            message=event.message,
                            recoverable=not event.fatal,
                        )
                    )
                    if event.fatal:
                        await self._fatal("provider_error")
                        return
            # The engine ended the conversation itself (e.g. the agent said goodbye): hang up once the
            # last reply has been heard.
            if not self._closed and self._on_engine_closed is not None:
                await self._on_engine_closed()
        except asyncio.CancelledError:
            raise
        except PatterError as exc:
            log.warning("call %s: engine connection lost: %s", self.ctx.call_id, exc)
            self._lost = True
            self._bus.emit(
                ErrorOccurred(
                    call_id=self.ctx.call_id, error_code="connection", message=str(exc), recoverable=False
                )
            )
            await self._fatal("connection")

    async def _fatal(self, code: str) -> None:
        if self._on_fatal is not None and not self._closed:
            await self._on_fatal(code)

    def _on_audio_out(self, event: AudioOut) -> None:
        if event.item_id in self._blocked:
            return
        item = self._item
        if item is None or (event.item_id and event.item_id != item.item_id):
            if item is not None:
                self._playout.end_segment()
            item = self._new_item(event.item_id)
        audio = event.audio if self._from_engine is None else self._from_engine.process(event.audio)
        item.audio_ms += self._wire.duration_ms(len(audio))
        if audio:
            t = self._turn.timings
            self._turn.timings = replace(t, tts_first_byte=first(t.tts_first_byte, time.monotonic()))
            self._playout.push(audio)

    def _on_agent_text(self, event: AgentTranscript) -> None:
        if event.item_id in self._blocked or event.item_id in self._finished_ids:
            return
        item = self._item if self._item is not None else self._new_item(event.item_id)
        if event.final:
            item.text = event.text
        else:
            item.text += event.text
        rail = first_blocking(item.text, self._guardrails) if self._guardrails else None
        if rail is not None:
            self._blocked.add(item.item_id)
            self._spawn(self._replace_blocked(item, rail.replacement), "guardrail replacement")
        t = self._turn.timings
        self._turn.timings = replace(t, llm_first_token=first(t.llm_first_token, time.monotonic()))

    def _retire(self, items: list[_Item]) -> None:
        self._finished_ids.update(i.item_id for i in items if i.item_id)

    def _new_item(self, item_id: str) -> _Item:
        item = _Item(item_id, start_ms=self._playout.queued_ms)
        self._item = item
        self._playing.append(item)
        self._playout.begin_segment("")
        return item

    def _on_response_done(self, event: ResponseDone) -> None:
        if event.usage:
            self._bus.emit(
                UsageRecorded(
                    call_id=self.ctx.call_id,
                    kind="realtime",
                    provider="openai_realtime" if self._engine.provider_mode == "openai_realtime" else "",
                    model=self._config.model or self._engine.model,  # what the engine connected with
                    details=dict(event.usage),
                )
            )
        if self._item is None:
            return
        self._item = None
        self._playout.end_segment()
        self._spawn(self._finish_playing(), "finish playing")

    async def _finish_playing(self) -> None:
        """Once everything queued has been heard, record those items (a barge-in records them itself)."""
        await self._playout.wait_idle()
        if self._closed or self._item is not None or not self._playing:
            return
        items, self._playing = self._playing, []
        self._retire(items)
        self._note_playback_times()
        self._playout.finish_utterance()
        for item in items:
            self._record_agent(item.text, item.text, interrupted=False)
        self._flush_pending_user()
        if self._after_utterance is not None:
            await self._after_utterance()

    async def _replace_blocked(self, item: _Item, replacement: str) -> None:
        """A guardrail hit mid-response: cut it (carrier and engine), then say the replacement instead."""
        heard_total = self._playout.heard_ms()
        await self._playout.interrupt()
        self._playing = [i for i in self._playing if i is not item]
        if self._item is item:
            self._item = None
        if self._session is not None:
            heard_ms = max(0.0, min(item.audio_ms, heard_total - item.start_ms))
            with contextlib.suppress(Exception):
                await self._session.interrupt(item.item_id, int(heard_ms))
            await self._session.say(replacement)

    # -- barge-in ------------------------------------------------------------------------------------
    async def _barge_in(self, *, record_only: bool = False) -> None:
        """Stop playback; items fully heard are kept, the one being heard is truncated, later ones dropped."""
        detected = time.monotonic()
        heard_total = self._playout.heard_ms()
        self._note_playback_times()
        report = await self._playout.interrupt()
        items, self._playing, self._item = self._playing, [], None
        self._retire(items)
        self._turn.timings = replace(
            self._turn.timings, barge_in_detected=detected, playback_stopped=report.stopped_at
        )
        for item in items:
            heard_ms = max(0.0, min(item.audio_ms, heard_total - item.start_ms))
            if heard_ms >= item.audio_ms > 0:
                self._record_agent(item.text, item.text, interrupted=False)
                continue
            share = heard_ms / item.audio_ms if item.audio_ms else 0.0
            heard_text = _share_of_words(item.text, share)
            if self._session is not None and not record_only and item.item_id:
                with contextlib.suppress(Exception):
                    await self._session.interrupt(item.item_id, int(heard_ms))
            self._record_agent(heard_text, item.text, interrupted=True)
            self._bus.emit(
                Interrupted(
                    call_id=self.ctx.call_id,
                    heard_text=heard_text,
                    bargein_ms=(time.monotonic() - detected) * 1000.0,
                )
            )
            break
        self._flush_pending_user()

    # -- tools ---------------------------------------------------------------------------------------
    async def _call_tool(self, call: ToolCall) -> None:
        if self._run_tool is None:
            output = '{"error": "no tools are configured", "fallback": true}'
        else:
            output = await self._run_tool(call.name, call.arguments)
        if self._session is not None:
            await self._session.send_tool_result(call.call_id, output)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        self._tasks.spawn(coro, f"call {self.ctx.call_id}: {what}")

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _user_said(self, text: str) -> None:
        if self._playing:
            # The agent's item is recorded once its playback is confirmed; keep the history in the order
            # things were said by recording the caller right after it.
            self._pending_user.append(text)
            return
        self._record_user(text)

    def _flush_pending_user(self) -> None:
        pending, self._pending_user = self._pending_user, []
        for text in pending:
            self._record_user(text)

    def _record_user(self, text: str) -> None:
        self._turn.user_text = text
        self.history.append(HistoryEntry("user", text, time.time()))
        self._bus.emit(UserTranscript(call_id=self.ctx.call_id, text=text))

    def _note_playback_times(self) -> None:
        """Keep when this turn's audio went out, before the playout forgets it for the next utterance."""
        t = self._turn.timings
        self._turn.timings = replace(
            t,
            first_audio_sent=first(t.first_audio_sent, self._playout.first_audio_sent),
            last_audio_sent=first(t.last_audio_sent, self._playout.last_audio_sent),
        )

    def _record_agent(self, heard: str, full: str, *, interrupted: bool) -> None:
        if heard:
            self.history.append(HistoryEntry("assistant", heard, time.time()))
        if heard or full:
            self._bus.emit(
                AgentUtterance(call_id=self.ctx.call_id, text=heard, interrupted=interrupted, full_text=full)
            )
        turn, t = self._turn, self._turn.timings
        timings = replace(t, first_audio_sent=first(t.first_audio_sent, self._playout.first_audio_sent))
        self._bus.emit(
            TurnCompleted(
                call_id=self.ctx.call_id,
                turn_index=self._turn_index,
                user_text=turn.user_text,
                agent_text=heard if heard or not interrupted else "[interrupted]",
                interrupted=interrupted,
                timings=timings,
            )
        )
        self._turn_index += 1
        self._turn = Turn()


def _share_of_words(text: str, fraction: float) -> str:
    words = text.split()
    return " ".join(words[: int(len(words) * max(0.0, min(1.0, fraction)))])
