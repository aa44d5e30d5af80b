"""One ``CallSession`` per media socket: parse carrier events, run the conversation, end exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from getpatter.call.agent_spec import Agent
from getpatter.call.budgets import MediaBudget, MediaLimits
from getpatter.call.bus import EventBus
from getpatter.call.clock import SYSTEM_CLOCK, Clock
from getpatter.call.context import CallContext, CallControl
from getpatter.call.conversation import Conversation
from getpatter.call.ending import CallEnd, EndReason
from getpatter.call.events import CallEnded, CallStarted, Direction, ErrorOccurred
from getpatter.call.overrides import apply_overrides
from getpatter.call.pipeline import PipelineConfig, PipelineConversation
from getpatter.call.playout import Playout
from getpatter.call.realtime import RealtimeConversation
from getpatter.call.tooling import CallTools
from getpatter.carriers.base import (
    CarrierControl,
    MediaAudio,
    MediaCodec,
    MediaDtmf,
    MediaMark,
    MediaProtocolError,
    MediaStarted,
    MediaStopped,
)
from getpatter.engines.base import EngineConfig
from getpatter.errors import PatterConfigError, PatterConnectionError, PatterError
from getpatter.metrics.describe import describe_agent
from getpatter.text.variables import sanitize_variable, substitute_variables
from getpatter.validation import validate_e164

log = logging.getLogger("getpatter.call")

Callback = Callable[..., Any]
Observer = Callable[[EventBus, CallContext], None]


@dataclass(slots=True)
class CallRuntime:
    """What the server hands every call: the agent, the user's callbacks, and the carrier's REST side."""

    agent: Agent
    carrier: str
    make_control: Callable[[str], CarrierControl | None]
    on_call_start: Callback | None = None
    on_call_end: Callback | None = None
    on_transcript: Callback | None = None
    on_message: Callback | None = None
    observers: list[Observer] = field(default_factory=list)
    #: Webhook tools may target private/loopback addresses (local development and tests only).
    allow_private_webhooks: bool = False
    #: A call whose socket brings nothing for this long is ended (watchdog; carriers send 50 msgs/s).
    media_timeout_s: float = 30.0
    #: Per-socket caps on frames, bytes, audio and DTMF per second (see ``call/budgets.py``).
    media_limits: MediaLimits = field(default_factory=MediaLimits.from_env)
    #: Calls are ended after this long, whatever happens (API.md B.1: 1 h).
    max_call_s: float = 3600.0
    #: Spoken by the carrier if the speech engine drops mid-call, before hanging up.
    apology: str = "Sorry, we are having technical difficulties. Please call again later."
    #: Per-call agent: ``(call_id, stream params, served agent) -> agent`` (outbound calls placed with
    #: their own agent or first message); ``None`` runs the served agent for every call.
    call_agent: Callable[[str, Mapping[str, str], Agent], Agent] | None = None


class CallSession:
    def __init__(
        self,
        runtime: CallRuntime,
        codec: MediaCodec,
        send: Callable[[str], Awaitable[None]],
        *,
        call_id_hint: str = "",
        direction: Direction = "inbound",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._clock = clock
        self.runtime = runtime
        self.codec = codec
        self._send = send
        self._hint = call_id_hint
        self._direction: Direction = direction
        self.bus = EventBus()
        self.ctx: CallContext | None = None
        self.conversation: Conversation | None = None
        self.playout = Playout(codec, send, clock=clock)
        self._control: CarrierControl | None = None
        #: How the call is ending, so far; frozen, replaced at each turn of events (see ``CallEnd``).
        self._end = CallEnd()
        self.dropped_messages = 0
        self.tools: CallTools | None = None
        #: The reason the call ended with (``CallEnded.reason``); empty until it has ended.
        self.end_reason: EndReason | Literal[""] = ""
        #: Set when the call should stop reading the carrier socket (hang-up without REST, shutdown).
        self.stop_requested = asyncio.Event()
        #: Set once the call has fully ended (``on_call_end`` done).
        self.ended = asyncio.Event()
        self._end_task: asyncio.Future[None] | None = None
        self._last_rx = clock.now()  # when the carrier last sent valid media (watchdog)
        self.budget = MediaBudget(runtime.media_limits, codec.wire_format, call_id_hint or "?")

    # -- socket loop ---------------------------------------------------------------------------------
    async def run(
        self, receive: Callable[[], Awaitable[str | bytes | None]], started: MediaStarted | None = None
    ) -> None:
        """Consume the carrier's media socket until it stops or closes; always ends the call once.
        ``started``: the ``start`` the server already read from the socket (and verified), if any.

        The session owns its tasks: the watchdog lives in a task group scoped to this call, so it can
        neither outlive the call nor fail unnoticed."""
        try:
            async with asyncio.TaskGroup() as tasks:
                watchdog = tasks.create_task(self._watchdog(), name=f"watchdog-{self._hint}")
                try:
                    await self._consume(receive, started)
                finally:
                    watchdog.cancel()
        except* Exception as group:
            log.error("call %s: watchdog failed", self._hint, exc_info=group)
            self._end = self._end.failed("internal")
        finally:
            self.budget.close()
            await self.end(self._end.reason)

    async def _consume(
        self, receive: Callable[[], Awaitable[str | bytes | None]], started: MediaStarted | None
    ) -> None:
        try:
            if started is not None:
                await self._on_started(started)
            while True:
                message = await receive()
                if message is None:
                    self._end = self._end.carrier_stopped("socket_closed")
                    break
                if self.codec.strict and len(message) > self.codec.max_message_bytes > 0:
                    self._protocol_error(f"message of {len(message)} bytes")
                    break
                if not self.budget.admit_frame(len(message)):
                    if self.budget.should_close:
                        self._end = self._end.because("media_flood")
                        break
                    continue
                try:
                    event = self.codec.parse(message)
                except MediaProtocolError as exc:
                    self.dropped_messages += 1
                    if self.codec.strict:
                        self._protocol_error(str(exc))
                        break
                    self.budget.malformed(str(exc))
                    continue
                if event is None:
                    continue
                if isinstance(event, MediaAudio):
                    if not self.budget.admit_audio(len(event.payload)):
                        continue
                    self._last_rx = self._clock.now()  # only valid media keeps the call alive
                    if self.conversation is not None:
                        await self.conversation.on_audio(event.payload)
                elif isinstance(event, MediaMark):
                    self.playout.on_mark(event.name)
                elif isinstance(event, MediaDtmf):
                    if self.conversation is not None and self.budget.admit_dtmf():
                        await self.conversation.on_dtmf(event.digit)
                elif isinstance(event, MediaStarted):
                    if self.ctx is None:
                        self._last_rx = self._clock.now()
                        await self._on_started(event)
                elif isinstance(event, MediaStopped):
                    self._end = self._end.carrier_stopped("stopped")
                    break
        except Exception as exc:
            log.exception("call %s failed", self._hint)
            self.bus.emit(ErrorOccurred(call_id=self._hint, error_code="internal", message=str(exc)))
            self._end = self._end.failed("internal")

    def _protocol_error(self, what: str) -> None:
        """A strict codec's peer broke the protocol: the call ends (``protocol_error``), nothing else."""
        log.warning("call %s: %s; ending the call", self._hint, what[:200])
        self._end = self._end.because("protocol_error")

    async def _watchdog(self) -> None:
        """A live carrier sends audio every 20 ms: a silent socket means the call is gone or stuck, and a
        call may not run forever. One timer per call, nothing on the per-message path but a timestamp."""
        started = self._clock.now()
        timeout = self.runtime.media_timeout_s
        while self._end_task is None:
            await self._clock.sleep(min(timeout / 2, 5.0))
            now = self._clock.now()
            reason: EndReason
            if now - started >= self.runtime.max_call_s:
                reason = "max_duration"
            elif now - self._last_rx >= timeout:
                reason = "no_media"
            else:
                continue
            log.warning("call %s: %s; ending it", self._hint, reason.replace("_", " "))
            self._end = self._end.because(reason)
            self.stop_requested.set()  # the socket route ends the call and stops reading
            return

    async def _on_started(self, event: MediaStarted) -> None:
        runtime = self.runtime
        params = dict(event.custom_params)
        call_id = event.call_id or self._hint
        self._hint = call_id
        ctx = CallContext(
            call_id=call_id,
            caller=params.get("caller", ""),
            callee=params.get("callee", ""),
            direction=self._direction,
            carrier=runtime.carrier,
            custom_params=params,
        )
        self.ctx = ctx
        for observer in runtime.observers:
            observer(self.bus, ctx)
        self._control = runtime.make_control(call_id)
        agent = runtime.agent
        if runtime.call_agent is not None:
            agent = runtime.call_agent(call_id, params, agent)
        variables: dict[str, str] = {k: sanitize_variable(v) for k, v in agent.variables.items()}
        variables.update(
            {k: sanitize_variable(v) for k, v in params.items() if k not in ("caller", "callee")}
        )
        if runtime.on_call_start is not None:
            overrides = await _maybe_await(
                runtime.on_call_start(
                    {
                        "call_id": call_id,
                        "caller": ctx.caller,
                        "callee": ctx.callee,
                        "direction": ctx.direction,
                        "custom_params": params,
                        "telephony_provider": runtime.carrier,
                    }
                )
            )
            agent, extra = apply_overrides(agent, overrides, call_id=call_id)
            variables.update({k: sanitize_variable(v) for k, v in extra.items()})
        ctx.variables = variables
        self.bus.emit(
            CallStarted(
                call_id=call_id,
                caller=ctx.caller,
                callee=ctx.callee,
                direction=ctx.direction,
                carrier=runtime.carrier,
                provider_mode=agent.provider,
                custom_params=params,
                agent=describe_agent(agent),
            )
        )
        background = agent.background_audio
        self.playout.start(background.mixer(self.codec.wire_format) if background is not None else None)
        self.tools = CallTools(
            agent.tools,
            ctx=ctx,
            bus=self.bus,
            transfer=self.transfer,
            hangup=self.request_hangup,
            allow_private_webhooks=runtime.allow_private_webhooks,
        )
        self.conversation = self._build_conversation(agent, ctx)
        await self.conversation.start()

    def _build_conversation(self, agent: Agent, ctx: CallContext) -> Conversation:
        system_prompt = substitute_variables(agent.system_prompt, ctx.variables)
        first_message = substitute_variables(agent.first_message, ctx.variables)
        if agent.provider != "pipeline":
            return self._build_realtime(agent, ctx, system_prompt, first_message)
        if agent.stt is None or agent.tts is None:
            raise PatterConfigError("pipeline mode needs stt= and tts=")
        control = CallControl(ctx, hangup=self.request_hangup, transfer=self.transfer)
        config = PipelineConfig(
            system_prompt=system_prompt,
            first_message=first_message,
            language=agent.language,
            barge_in_threshold_ms=agent.barge_in_threshold_ms,
            aggressive_first_flush=agent.aggressive_first_flush,
            hooks=agent.hooks,
            text_transforms=agent.text_transforms,
            audio_filter=agent.audio_filter,
        )
        return PipelineConversation(
            ctx=ctx,
            config=config,
            stt=agent.stt,
            tts=agent.tts,
            llm=agent.llm,
            on_message=self.runtime.on_message,
            call_control=control,
            playout=self.playout,
            wire_format=self.codec.wire_format,
            bus=self.bus,
            vad=agent.vad,
            tools=self.tools.schemas() if self.tools is not None else None,
            run_tool=self.tools.run if self.tools is not None else None,
            guardrails=agent.guardrails or (),
            on_tts_failure=self._engine_lost,
            after_utterance=self._after_utterance,
            clock=self._clock,
        )

    def _build_realtime(
        self, agent: Agent, ctx: CallContext, system_prompt: str, first_message: str
    ) -> RealtimeConversation:
        engine = agent.engine
        if engine is None:
            from getpatter.engines.openai_realtime import OpenAIRealtime

            engine = OpenAIRealtime(voice=agent.voice, model=agent.model, allow_unlisted_voice=True)
        config = EngineConfig(
            instructions=system_prompt,
            voice=agent.voice,
            model=agent.model,
            language=agent.language,
            first_message=first_message,
            tools=tuple(self.tools.schemas()) if self.tools is not None else (),
            carrier_format=self.codec.wire_format,
        )
        return RealtimeConversation(
            ctx=ctx,
            engine=engine,
            config=config,
            playout=self.playout,
            wire_format=self.codec.wire_format,
            bus=self.bus,
            run_tool=self.tools.run if self.tools is not None else None,
            guardrails=agent.guardrails or (),
            on_fatal=self._engine_lost,
            on_engine_closed=self.request_hangup,
            after_utterance=self._after_utterance,
        )

    async def _engine_lost(self, code: str) -> None:
        """The speech engine is gone: apologise through the carrier's own voice, then end the call."""
        self._end = self._end.failed(code).requested("error")
        if self._control is not None:
            try:
                await self._control.say_and_hangup(self.runtime.apology)
                self._end = self._end.carrier_told()
                return
            except Exception:
                log.warning("call %s: could not play the apology; hanging up", self._hint, exc_info=True)
        self.stop_requested.set()

    # -- control -------------------------------------------------------------------------------------
    async def request_hangup(self) -> None:
        """Hang up once the agent's current utterance has been heard (so goodbyes are not cut)."""
        self._end = self._end.requested("agent_hangup")
        if self.conversation is None or not self.conversation.agent_busy:
            await self._hangup_now()

    async def _after_utterance(self) -> None:
        if self._end.hangup_requested:
            await self._hangup_now()

    async def _hangup_now(self) -> None:
        if self._end.carrier_ending:
            return  # the carrier was already told to end the call (and will stop the stream)
        if self._control is not None:
            try:
                await self._control.hangup()
                self._end = self._end.carrier_told()
                return
            except Exception:
                log.warning(
                    "call %s: carrier hangup failed; closing the media socket", self._hint, exc_info=True
                )
        self.stop_requested.set()

    async def transfer(self, number: str) -> None:
        """Cold-transfer the caller. A malformed number raises :class:`PatterConfigError`; a transfer the
        carrier refuses raises its :class:`PatterError` and is reported as a recoverable ``transfer``
        error. Either way the call is not marked transferred and the conversation goes on."""
        validate_e164(number, "transfer number")
        if self._control is None:
            raise PatterConfigError("this call has no carrier REST control, so it cannot be transferred")
        before = self._end
        # Set first: the carrier may stop the media stream before its REST answer arrives.
        self._end = self._end.requested("transferred")
        try:
            await self._control.transfer(number)
        except Exception as exc:
            self._end = replace(self._end, reason=before.reason, hangup_requested=before.hangup_requested)
            log.warning("call %s: the carrier refused the transfer to %s: %s", self._hint, number, exc)
            if self.ctx is not None:
                self.bus.emit(
                    ErrorOccurred(call_id=self.ctx.call_id, error_code="transfer", message=str(exc))
                )
            if isinstance(exc, PatterError):
                raise
            raise PatterConnectionError(f"transfer to {number} failed: {exc}") from exc

    # -- end -----------------------------------------------------------------------------------------
    async def end(self, reason: EndReason) -> None:
        """End the call exactly once. The work runs in its own task, shielded, so a caller that is itself
        cancelled (the socket route, a shutdown) can never cut ``on_call_end`` short."""
        if self._end_task is None:
            self._end_task = asyncio.ensure_future(self._finish(reason))
        await asyncio.shield(self._end_task)

    async def end_as_requested(self) -> None:
        """End with the reason that asked the socket to stop (agent hang-up, engine loss, shutdown)."""
        await self.end(self._end.reason)

    async def _finish(self, reason: EndReason) -> None:
        self.end_reason = reason
        self.stop_requested.set()
        try:
            await self._finish_call(reason)
        finally:
            self.ended.set()

    async def _finish_call(self, reason: EndReason) -> None:
        if self.conversation is not None:
            with contextlib.suppress(Exception):
                await self.conversation.close()
        await self.playout.close()
        if self.tools is not None:
            with contextlib.suppress(Exception):
                await self.tools.aclose()
        ctx = self.ctx
        if ctx is None:
            return
        history = self.conversation.history if self.conversation is not None else []
        transcript = tuple({"role": h.role, "text": h.text} for h in history)
        ended_at = time.time()
        self.bus.emit(
            CallEnded(
                call_id=ctx.call_id,
                reason=reason,
                transcript=transcript,
                error_code=self._end.error_code,
                duration_seconds=round(time.monotonic() - ctx.started_mono, 2),
            )
        )
        await self.bus.drain()
        if self.runtime.on_call_end is not None:
            try:
                await _maybe_await(
                    self.runtime.on_call_end(
                        {
                            "call_id": ctx.call_id,
                            "caller": ctx.caller,
                            "callee": ctx.callee,
                            "ended_at": ended_at,
                            "transcript": [dict(t) for t in transcript],
                            "conversation_history": [h.as_dict() for h in history],
                            "metrics": ctx.metrics,
                            "reason": reason,
                        }
                    )
                )
            except Exception:
                log.exception("on_call_end callback failed for call %s", ctx.call_id)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
