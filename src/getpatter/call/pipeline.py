"""Pipeline mode: caller audio -> VAD + STT -> turn end -> LLM (or ``on_message``) -> sentences -> TTS.

When a caller turn is complete is decided in :mod:`getpatter.call.turns`.

Per caller frame (the hot path): :mod:`getpatter.call.caller_audio`. Barge-in: caller voice
sustained for ``barge_in_threshold_ms`` while the agent is answering cancels the answer, clears the
carrier's buffer, and only what the caller heard (mark-based) goes into the history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from getpatter.audio.format import AudioFormat
from getpatter.audio.vad import SpeechEnd, SpeechStart, VadEvent
from getpatter.call.barge_in import barge_in_onset
from getpatter.call.bus import EventBus
from getpatter.call.caller_audio import CallerAudio
from getpatter.call.clock import SYSTEM_CLOCK, Clock
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
from getpatter.call.hooks import HookContext, HookRunner, PipelineHooks
from getpatter.call.playout import Playout
from getpatter.call.replies import MessageHandler, ReplySource, ToolRunner
from getpatter.call.reply_text import ReplyAssembler, Sentence, SentenceShaper
from getpatter.call.speaker import Speaker
from getpatter.call.stt_link import ResilientSTTStream
from getpatter.call.tasks import cancel_and_wait
from getpatter.call.turn_clock import Turn, first
from getpatter.call.turns import TurnAssembler
from getpatter.errors import PatterError
from getpatter.guardrails import Guardrail
from getpatter.llm.base import LLM, Message, ToolSchema
from getpatter.stt.base import STT
from getpatter.stt.base import SpeechStarted as SttSpeechStarted
from getpatter.text.chunker import SentenceChunker
from getpatter.tts.base import TTS

log = logging.getLogger("getpatter.pipeline")


@dataclass(slots=True)
class PipelineConfig:
    system_prompt: str
    first_message: str
    language: str = "en"
    barge_in_threshold_ms: int = 300
    aggressive_first_flush: bool = False
    end_of_turn_fallback_ms: int = 700
    hooks: PipelineHooks | None = None
    text_transforms: tuple[Callable[[str], str], ...] = ()
    #: Caller-audio filter (PCM16 16 kHz bytes -> bytes) before VAD and STT; see getpatter.audio.filters.
    audio_filter: Callable[[bytes], bytes] | None = None
    #: Spoken when the LLM fails (after FallbackLLM, if configured, has given up too).
    llm_error_message: str = "Sorry, I'm having trouble right now. Could you say that again?"


class PipelineConversation:
    def __init__(
        self,
        *,
        ctx: CallContext,
        config: PipelineConfig,
        stt: STT,
        tts: TTS,
        llm: LLM | None,
        on_message: MessageHandler | None,
        call_control: Any,
        playout: Playout,
        wire_format: AudioFormat,
        bus: EventBus,
        vad: Any = None,
        tools: list[ToolSchema] | None = None,
        run_tool: ToolRunner | None = None,
        guardrails: Sequence[Guardrail] = (),
        on_tts_failure: Callable[[str], Awaitable[None]] | None = None,
        after_utterance: Callable[[], Awaitable[None]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._time = clock  # pacing, turn timing and retries of the parts below
        stt, tts = stt.for_wire(wire_format), tts.for_wire(wire_format)  # carrier-native unless pinned
        self.ctx = ctx
        self.cfg = config
        self._stt = stt
        self._tts = tts
        self._playout = playout
        self._bus = bus
        self._after_utterance = after_utterance
        self._on_tts_failure = on_tts_failure
        self.history: list[HistoryEntry] = []
        self._messages: list[Message] = [{"role": "system", "content": config.system_prompt}]
        self._hooks = HookRunner(config.hooks, HookContext(ctx.call_id, ctx.caller, ctx.callee))
        self._shaper = SentenceShaper(self._hooks, config.text_transforms, guardrails)
        self._speaker = Speaker(tts, playout, wire_format, self._hooks, clock=clock)
        self._replies = ReplySource(
            ctx=ctx,
            bus=bus,
            llm=llm,
            on_message=on_message,
            call_control=call_control,
            hooks=self._hooks,
            use_before_llm=config.hooks is not None,
            tools=tools,
            run_tool=run_tool,
            clock=clock,
        )
        self._audio = CallerAudio(
            call_id=ctx.call_id,
            wire_format=wire_format,
            stt_format=stt.input_format,
            vad=vad,
            audio_filter=config.audio_filter,
            hooks=self._hooks if config.hooks is not None else None,
        )
        self._vad = self._audio.vad
        self._stream: ResilientSTTStream | None = None
        self._reader: asyncio.Task[None] | None = None
        self._response: asyncio.Task[None] | None = None
        self._turns: TurnAssembler | None = None
        self._queued_turns: list[str] = []  # user turns heard while the agent was still speaking
        self._barged_onset: float | None = None
        self._busy_since_ms = 0.0
        self._turn = Turn()
        self._pending_speech_started: float | None = None
        self._pending_speech_ended: float | None = None
        self._turn_index = 0
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        stream = ResilientSTTStream(self._stt, on_error=self._stt_error, clock=self._time)
        await stream.start()
        self._stream = stream
        self._turns = TurnAssembler(
            stream=stream,
            vad=self._vad,
            vad_driven=self._stt.needs_vad_end_of_turn,
            fallback_ms=self.cfg.end_of_turn_fallback_ms,
            commit=self._commit,
            clock=self._time,
        )
        self._reader = asyncio.create_task(self._read_stt(), name=f"stt-{self.ctx.call_id}")
        if self.cfg.first_message:
            self._start_response(user_text="", fixed_text=self.cfg.first_message)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._turns is not None:
            await self._turns.close()
        if self.agent_busy:
            # Hang-up mid-answer: the turn closes as interrupted, with what the caller heard.
            await self._cancel_response(record=True)
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await self._stream.close()
            self._emit_usage_stt()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._speaker.characters:
            self._bus.emit(
                UsageRecorded(
                    call_id=self.ctx.call_id,
                    kind="tts",
                    provider=self._tts.provider_id,
                    model=self._tts.model,
                    characters=self._speaker.characters,
                )
            )

    @property
    def agent_busy(self) -> bool:
        return self._response is not None and not self._response.done()

    # -- caller audio --------------------------------------------------------------------------------
    async def on_audio(self, wire: bytes) -> None:
        if events := await self._audio.take(wire, self._stream):
            self._vad_events(events)
        if self._vad.speaking:  # nothing to flush or interrupt while the caller is quiet
            await self._while_speaking()

    async def _while_speaking(self) -> None:
        """Per frame while the VAD holds the caller's speech open.

        STT sends are coalesced to 40 ms (``call/stt_link.py``) except in the silence right after speech:
        the vendor's endpointer times that silence, so each frame of it goes out at once and the coalescing
        adds nothing to the end of a turn. Then barge-in is considered."""
        vad = self._vad
        if self._stream is not None and vad.last_voiced_ms < vad.stream_ms:
            await self._stream.flush()
        await self._check_barge_in()

    def _vad_events(self, events: list[VadEvent]) -> None:
        for event in events:
            if isinstance(event, SpeechStart):
                self._on_speech_start(event.onset_ms)
            elif isinstance(event, SpeechEnd):
                self._on_speech_end(event.end_ms, event.duration_ms)

    def _on_speech_start(self, onset_ms: float) -> None:
        if self._turns is not None:
            self._turns.speech_started()
        lag_s = (self._audio.stream_ms - onset_ms) / 1000.0
        self._pending_speech_started = time.monotonic() - lag_s
        self._bus.emit(UserSpeechStarted(call_id=self.ctx.call_id))

    def _on_speech_end(self, end_ms: float, duration_ms: float) -> None:
        lag_s = (self._audio.stream_ms - end_ms) / 1000.0
        self._pending_speech_ended = time.monotonic() - lag_s
        self._bus.emit(UserSpeechEnded(call_id=self.ctx.call_id, duration_ms=duration_ms))
        if self._turns is not None:
            self._turns.speech_ended()

    async def _check_barge_in(self) -> None:
        """Interrupt when caller speech qualifies (:func:`~getpatter.call.barge_in.barge_in_onset`)."""
        if not self._vad.speaking or not self.agent_busy:
            return
        onset = barge_in_onset(
            self._vad,
            threshold_ms=self.cfg.barge_in_threshold_ms,
            busy_since_ms=self._busy_since_ms,
            interrupted_onset=self._barged_onset,
        )
        if onset is not None:
            self._barged_onset = onset
            await self.interrupt()

    async def on_dtmf(self, digit: str) -> None:
        self._bus.emit(DtmfReceived(call_id=self.ctx.call_id, digit=digit))
        await self._commit(f"[DTMF: {digit}]")

    def on_mark(self, name: str) -> None:
        self._playout.on_mark(name)

    def _stt_error(self, exc: PatterError, recovering: bool) -> None:
        log.warning("call %s: STT %s: %s", self.ctx.call_id, "reconnecting" if recovering else "lost", exc)
        if self._turns is not None:
            self._turns.stt_restarted()
        self._bus.emit(
            ErrorOccurred(
                call_id=self.ctx.call_id, error_code="stt", message=str(exc), recoverable=recovering
            )
        )

    # -- transcripts and turn ends -------------------------------------------------------------------
    async def _read_stt(self) -> None:
        assert self._stream is not None and self._turns is not None
        try:
            async for event in self._stream:
                if isinstance(event, SttSpeechStarted):
                    continue
                await self._turns.on_transcript(event)
        except asyncio.CancelledError:
            raise
        except PatterError as exc:
            log.warning("call %s: STT stream failed: %s", self.ctx.call_id, exc)
            self._bus.emit(ErrorOccurred(call_id=self.ctx.call_id, error_code="stt", message=str(exc)))
        except Exception as exc:
            log.exception("call %s: transcript handling failed", self.ctx.call_id)
            self._bus.emit(ErrorOccurred(call_id=self.ctx.call_id, error_code="internal", message=str(exc)))

    async def _commit(self, text: str) -> None:
        hooked = await self._hooks.after_transcribe(text) if self.cfg.hooks else text
        if not hooked:
            return
        now = time.monotonic()
        if self.agent_busy:
            if self._playout.speaking and self._playout.first_audio_sent is not None:
                # Barge-in is off (or the caller was too brief to trip it): answer once this reply has
                # been heard. Never wait for it here: this runs on the loop that reads the mark echoes.
                self._queued_turns.append(hooked)
                return
            else:
                # The caller kept talking while we were still thinking: merge into one turn.
                hooked = f"{self._turn.user_text} {hooked}".strip()
                await self._cancel_response(record=False)
                if self._messages and self._messages[-1].get("role") == "user":
                    self._messages.pop()
                    if self.history and self.history[-1].role == "user":
                        self.history.pop()
                        self._history_changed()
        self._begin_turn(hooked, now)

    def _begin_turn(self, text: str, committed_at: float) -> None:
        self.history.append(HistoryEntry("user", text, time.time()))
        self._history_changed()
        self._messages.append({"role": "user", "content": text})
        self._bus.emit(UserTranscript(call_id=self.ctx.call_id, text=text))
        self._start_response(user_text=text, committed_at=committed_at)

    # -- answering -----------------------------------------------------------------------------------
    def _start_response(self, *, user_text: str, fixed_text: str = "", committed_at: float = 0.0) -> None:
        heard = bool(user_text)  # the greeting has no caller speech before it
        timings = TurnTimings(
            speech_started=self._pending_speech_started if heard else None,
            speech_ended=self._pending_speech_ended if heard else None,
            transcript_final=committed_at or None,
        )
        self._turn = Turn(user_text, timings)
        self._speaker.new_utterance()
        self._busy_since_ms = self._vad.stream_ms
        self._response = asyncio.create_task(self._respond(user_text, fixed_text), name="respond")

    async def _respond(self, user_text: str, fixed_text: str) -> None:
        turn = self._turn
        turn.timings = replace(turn.timings, llm_dispatched=time.monotonic())
        queue: asyncio.Queue[Sentence | None] = asyncio.Queue()
        producer = asyncio.create_task(self._produce(queue, fixed_text))
        try:
            while (item := await queue.get()) is not None:
                spoken = await self._shaper.shape(*item)
                if spoken is None:
                    continue
                t = turn.timings
                turn.timings = replace(t, first_sentence=first(t.first_sentence, time.monotonic()))
                await self._say_with_retry(spoken.text)
                t = turn.timings
                turn.timings = replace(t, tts_first_byte=first(t.tts_first_byte, self._speaker.first_byte_at))
                if spoken.final:
                    break  # a guardrail blocked the reply: its replacement was the last word
            else:
                await producer
            await self._playout.wait_idle()
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(BaseException):
                    await producer
        t = turn.timings
        turn.timings = replace(
            t,
            first_audio_sent=first(t.first_audio_sent, self._playout.first_audio_sent),
            last_audio_sent=first(t.last_audio_sent, self._playout.last_audio_sent),
        )
        heard, full = self._playout.finish_utterance()
        self._record_agent(heard, full, interrupted=False)
        self._finish_turn(user_text=user_text, agent_text=heard, interrupted=False)
        if self._after_utterance is not None:
            await self._after_utterance()
        if self._queued_turns and not self._closed:
            text = " ".join(self._queued_turns)
            self._queued_turns.clear()
            self._begin_turn(text, time.monotonic())

    async def _say_with_retry(self, sentence: str) -> None:
        if not await self._speaker.say_with_retry(sentence, self._tts_error) and self._on_tts_failure:
            await self._on_tts_failure("tts")  # TTS is down: the agent is mute, the carrier apologises

    def _tts_error(self, exc: PatterError, recoverable: bool) -> None:
        log.warning("call %s: TTS failed: %s", self.ctx.call_id, exc)
        self._bus.emit(
            ErrorOccurred(
                call_id=self.ctx.call_id, error_code="tts", message=str(exc), recoverable=recoverable
            )
        )

    async def _produce(self, queue: asyncio.Queue[Sentence | None], fixed_text: str) -> None:
        """Reply text -> sentences on ``queue`` (None ends it); hooks/transforms/guardrails run per sentence
        on the consumer side (:class:`SentenceShaper`)."""
        chunker = SentenceChunker(
            language=self.cfg.language, aggressive_first_flush=self.cfg.aggressive_first_flush
        )
        reply = ReplyAssembler(self._hooks, chunker, queue.put_nowait)
        try:
            if fixed_text:
                reply.fixed(fixed_text)
                reply.fixed_flush()
            else:
                await self._replies.produce(
                    user_text=self._turn.user_text,
                    history=self.history,
                    messages=self._messages,
                    on_text=reply.feed,
                    turn=self._turn,
                )
                await reply.finish()
        except PatterError as exc:
            log.warning("call %s: LLM failed: %s", self.ctx.call_id, exc)
            self._bus.emit(ErrorOccurred(call_id=self.ctx.call_id, error_code="llm", message=str(exc)))
            await reply.finish()
            reply.fixed(self.cfg.llm_error_message)
            reply.fixed_flush()
        finally:
            self._turn.timings = replace(self._turn.timings, llm_done=time.monotonic())
            queue.put_nowait(None)

    # -- interruption --------------------------------------------------------------------------------
    async def interrupt(self) -> None:
        """Barge-in: stop the answer and keep only what the caller heard."""
        detected = time.monotonic()
        self._turn.timings = replace(self._turn.timings, barge_in_detected=detected)
        first_audio = self._playout.first_audio_sent
        await self._cancel_response(record=True)
        if first_audio is not None:
            self._bus.emit(
                Interrupted(
                    call_id=self.ctx.call_id,
                    heard_text=self.history[-1].text
                    if self.history and self.history[-1].role == "assistant"
                    else "",
                    bargein_ms=(time.monotonic() - detected) * 1000.0,
                )
            )

    async def _cancel_response(self, *, record: bool) -> None:
        task, self._response = self._response, None
        await cancel_and_wait(task)
        report = await self._playout.interrupt()
        t = self._turn.timings
        self._turn.timings = replace(
            t,
            playback_stopped=time.monotonic(),
            first_audio_sent=first(t.first_audio_sent, report.first_audio_sent),
        )
        if record:
            self._record_agent(report.text, report.full_text, interrupted=True)
            self._finish_turn(user_text=self._turn.user_text, agent_text=report.text, interrupted=True)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _record_agent(self, heard: str, full: str, *, interrupted: bool) -> None:
        if heard:
            self.history.append(HistoryEntry("assistant", heard, time.time()))
            self._history_changed()
            self._messages.append({"role": "assistant", "content": heard})
        if heard or full:
            self._bus.emit(
                AgentUtterance(call_id=self.ctx.call_id, text=heard, interrupted=interrupted, full_text=full)
            )

    def _history_changed(self) -> None:
        """Keep ``HookContext.history`` (what hooks see) equal to the conversation so far."""
        if self.cfg.hooks is not None:
            self._hooks.ctx = replace(self._hooks.ctx, history=tuple(h.as_dict() for h in self.history))

    def _finish_turn(self, *, user_text: str, agent_text: str, interrupted: bool) -> None:
        t = self._turn.timings
        timings = replace(t, first_audio_sent=first(t.first_audio_sent, self._playout.first_audio_sent))
        self._bus.emit(
            TurnCompleted(
                call_id=self.ctx.call_id,
                turn_index=self._turn_index,
                user_text=user_text,
                agent_text=agent_text if not interrupted or agent_text else "[interrupted]",
                interrupted=interrupted,
                timings=timings,
            )
        )
        self._turn_index += 1
        self._turn = Turn()
        self._pending_speech_started = None
        self._pending_speech_ended = None

    def _emit_usage_stt(self) -> None:
        assert self._stream is not None
        self._bus.emit(
            UsageRecorded(
                call_id=self.ctx.call_id,
                kind="stt",
                provider=self._stt.provider_id,
                model=self._stt.model,
                audio_seconds=self._stream.audio_seconds,
            )
        )
