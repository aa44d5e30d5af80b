"""``phone.test(agent)``: talk to an agent in the terminal, as text, with no phone, STT or TTS (API.md A.6).

The point is to exercise the *same* reply path a real call uses, so what works here works on the phone:
replies come from :class:`~getpatter.call.replies.ReplySource` (the user's ``on_message`` with its
``CallControl``, or the agent's LLM with the call layer's tool loop), and tools run through
:class:`~getpatter.call.tooling.CallTools` (user tools, webhook tools, ``transfer_call``/``end_call``).
Only the carrier is replaced: a transfer or hang-up is printed and ends the session.

The session reads lines from ``input`` (default stdin, read in a thread so the loop stays free) and
writes to ``output`` (default stdout), so it can be driven by a pipe or in-memory streams.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from getpatter.agent import Agent
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext, CallControl, HistoryEntry
from getpatter.call.events import ToolCalled, ToolResult
from getpatter.call.hooks import HookContext, HookRunner
from getpatter.call.overrides import apply_overrides
from getpatter.call.replies import ReplySource
from getpatter.call.tooling import CallTools
from getpatter.call.turn_clock import Turn
from getpatter.errors import PatterConfigError, PatterTypeError
from getpatter.guardrails import first_blocking
from getpatter.llm.base import LLM, Message
from getpatter.metrics.describe import describe_line
from getpatter.text.variables import sanitize_variable, substitute_variables
from getpatter.validation import validate_e164

TEST_CALLER = "+15550000001"
TEST_CALLEE = "+15550000002"
COMMANDS = (
    ("/quit", "leave test mode"),
    ("/hangup", "hang up as the caller"),
    ("/transfer <number>", "ask for a transfer (E.164)"),
    ("/history", "show the conversation so far"),
)
Callback = Callable[..., Any]


def new_test_call_id() -> str:
    return "test_" + secrets.token_hex(6)


class TestSession:
    """One simulated text call. :meth:`run` returns the end reason once the call is over."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        agent: Agent,
        *,
        on_message: Callback | None = None,
        on_call_start: Callback | None = None,
        on_call_end: Callback | None = None,
        input: TextIO | None = None,
        output: TextIO | None = None,
        allow_private_webhooks: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(agent, Agent):
            raise PatterTypeError(
                f"agent must be the Agent returned by phone.agent(...), got {type(agent).__name__}"
            )
        if on_message is not None and not callable(on_message):
            raise PatterConfigError(
                "on_message must be a callable taking (event) or (event, call_control) in test mode "
                "(remote on_message URLs are for serve()). Fix: pass a function."
            )
        if on_message is not None and agent.llm is not None:
            raise PatterConfigError("on_message and the agent's llm= are mutually exclusive: pass only one")
        self.agent = agent
        self._on_message = on_message
        self._on_call_start = on_call_start
        self._on_call_end = on_call_end
        self._input = input if input is not None else sys.stdin
        self._console = Console(file=output if output is not None else sys.stdout, highlight=False)
        self._allow_private = allow_private_webhooks
        self._env = env
        self.ctx = CallContext(
            call_id=new_test_call_id(),
            caller=TEST_CALLER,
            callee=TEST_CALLEE,
            direction="inbound",
            carrier="test",
        )
        self.bus = EventBus()
        self.history: list[HistoryEntry] = []
        self._messages: list[Message] = []
        self._end_reason = ""
        self._line_open = False  # an "Agent: ..." line is being streamed
        self._notices: list[str] = []  # carrier actions, shown once the reply that caused them is out

    # -- the call ------------------------------------------------------------------------------------
    async def run(self) -> str:
        agent = await self._start()
        llm = None if self._on_message is not None else _pick_llm(agent, self._env)
        tools = CallTools(
            agent.tools,
            ctx=self.ctx,
            bus=self.bus,
            transfer=self._transfer,
            hangup=self._agent_hangup,
            allow_private_webhooks=self._allow_private,
        )
        control = CallControl(self.ctx, hangup=self._agent_hangup, transfer=self._transfer)
        replies = ReplySource(
            ctx=self.ctx,
            bus=self.bus,
            llm=llm,
            on_message=self._on_message,
            call_control=control,
            hooks=HookRunner(agent.hooks, HookContext(self.ctx.call_id, self.ctx.caller, self.ctx.callee)),
            use_before_llm=agent.hooks is not None,
            tools=tools.schemas() if llm is not None else None,
            run_tool=tools.run,
        )
        self.bus.on(ToolCalled, self._show_tool_call)
        self.bus.on(ToolResult, self._show_tool_result)
        self._banner(agent, llm)
        first = substitute_variables(agent.first_message, self.ctx.variables)
        if first:
            self._say_agent(first)
        try:
            while not self._end_reason:
                line = await asyncio.to_thread(self._input.readline)
                if not line:  # end of input
                    self._end_reason = "quit"
                    break
                text = line.strip()
                if not text:
                    continue
                if text.startswith("/"):
                    await self._command(text)
                    continue
                await self._turn(replies, agent, text)
        finally:
            await tools.aclose()
            if llm is not None and llm is not agent.llm:
                await llm.close()
            await self._finish()
        return self._end_reason

    async def _start(self) -> Agent:
        agent = self.agent
        variables = {k: sanitize_variable(v) for k, v in agent.variables.items()}
        if self._on_call_start is not None:
            overrides = await _maybe_await(
                self._on_call_start(
                    {
                        "call_id": self.ctx.call_id,
                        "caller": self.ctx.caller,
                        "callee": self.ctx.callee,
                        "direction": self.ctx.direction,
                        "custom_params": {},
                        "telephony_provider": "test",
                    }
                )
            )
            agent, extra = apply_overrides(agent, overrides, call_id=self.ctx.call_id)
            variables.update({k: sanitize_variable(v) for k, v in extra.items()})
        self.ctx.variables = variables
        self._messages = [{"role": "system", "content": substitute_variables(agent.system_prompt, variables)}]
        return agent

    async def _turn(self, replies: ReplySource, agent: Agent, text: str) -> None:
        self.history.append(HistoryEntry("user", text, time.time()))
        self._messages.append({"role": "user", "content": text})
        parts: list[str] = []
        streaming = not agent.guardrails  # with guardrails the whole reply is checked before it is shown

        def on_text(delta: str) -> None:
            parts.append(delta)
            if streaming and delta:
                self._stream_agent(delta)

        try:
            await replies.produce(
                user_text=text,
                history=list(self.history[:-1]),
                messages=self._messages,
                on_text=on_text,
                turn=Turn(text),
            )
        except Exception as exc:  # a failing LLM or handler must not kill the session
            self._close_line()
            self._console.print(f"[bold red]reply failed:[/] {escape(str(exc))}")
            self._flush_notices()
            return
        reply = "".join(parts).strip()
        if not streaming and reply:
            rail = first_blocking(reply, agent.guardrails or ())
            reply = rail.replacement if rail is not None else reply
            self._stream_agent(reply)
        self._close_line()
        self._flush_notices()
        if reply:
            self.history.append(HistoryEntry("assistant", reply, time.time()))
            self._messages.append({"role": "assistant", "content": reply})

    async def _command(self, text: str) -> None:
        name, _, arg = text.partition(" ")
        name, arg = name.lower(), arg.strip()
        if name == "/quit":
            self._end_reason = "quit"
        elif name == "/hangup":
            self._console.print("[dim]You hung up.[/]")
            self._end_reason = "caller_hangup"
        elif name == "/history":
            self._show_history()
        elif name == "/transfer":
            try:
                number = validate_e164(arg, "number")
            except (ValueError, TypeError) as exc:
                self._console.print(f"[yellow]usage: /transfer +15551234567[/] ({escape(str(exc))})")
                return
            await self._transfer(number)
            self._flush_notices()
        else:
            self._console.print(f"[yellow]unknown command {escape(name)}[/]; commands: " + _command_list())

    # -- what the carrier would do -------------------------------------------------------------------
    async def _transfer(self, number: str) -> None:
        validate_e164(number, "transfer number")  # as on a real call: a bad number raises, nothing ends
        self._notices.append(f"[bold magenta]\\[call][/] transferring the caller to {escape(number)}")
        self._end_reason = "transferred"

    async def _agent_hangup(self) -> None:
        self._notices.append("[bold magenta]\\[call][/] the agent hung up")
        self._end_reason = self._end_reason or "agent_hangup"

    async def _finish(self) -> None:
        await self.bus.drain()
        transcript = [{"role": h.role, "text": h.text} for h in self.history]
        self._console.print(f"[dim]Call {self.ctx.call_id} ended ({self._end_reason}).[/]")
        if self._on_call_end is not None:
            await _maybe_await(
                self._on_call_end(
                    {
                        "call_id": self.ctx.call_id,
                        "caller": self.ctx.caller,
                        "callee": self.ctx.callee,
                        "ended_at": time.time(),
                        "transcript": transcript,
                        "conversation_history": [h.as_dict() for h in self.history],
                        "metrics": None,
                        "reason": self._end_reason,
                    }
                )
            )

    # -- printing ------------------------------------------------------------------------------------
    def _banner(self, agent: Agent, llm: LLM | None) -> None:
        source = (
            "on_message handler" if llm is None else f"{llm.provider_id or type(llm).__name__} {llm.model}"
        )
        c = self._console
        c.rule("[bold]getpatter test mode[/]")
        c.print(f"Agent: {describe_line(agent)} replies: {source}", soft_wrap=True)
        c.print(f"Call {self.ctx.call_id}: {self.ctx.caller} -> {self.ctx.callee}")
        c.print("Commands: " + _command_list())
        c.rule()

    def _say_agent(self, text: str) -> None:
        self.history.append(HistoryEntry("assistant", text, time.time()))
        self._messages.append({"role": "assistant", "content": text})
        self._console.print(f"[bold green]Agent:[/] {escape(text)}")

    def _show_history(self) -> None:
        if not self.history:
            self._console.print("[dim](no conversation yet)[/]")
        for i, h in enumerate(self.history, 1):
            self._console.print(f"{i:>3}. {h.role}: {escape(h.text)}")

    def _stream_agent(self, text: str) -> None:
        if not self._line_open:
            self._console.print("[bold green]Agent:[/] ", end="")
            self._line_open = True
        self._console.print(escape(text), end="")
        self._console.file.flush()

    def _close_line(self) -> None:
        if self._line_open:
            self._console.print()
            self._line_open = False

    def _flush_notices(self) -> None:
        notices, self._notices = self._notices, []
        for notice in notices:
            self._console.print(notice)

    def _show_tool_call(self, ev: ToolCalled) -> None:
        self._close_line()
        self._console.print(f"[cyan]\\[tool][/] {escape(ev.name)}({escape(str(ev.arguments))})")

    def _show_tool_result(self, ev: ToolResult) -> None:
        self._console.print(f"[cyan]\\[tool][/] {escape(ev.name)} -> {escape(ev.result)}")


def _command_list() -> str:
    return ", ".join(name for name, _ in COMMANDS)


def _pick_llm(agent: Agent, env: Mapping[str, str] | None) -> LLM:
    """The agent's ``llm=``, else OpenAI chat when an OpenAI key is known (env or the realtime engine)."""
    if agent.llm is not None:
        return agent.llm
    environ = os.environ if env is None else env
    from getpatter.llm.openai import OpenAILLM

    if environ.get("OPENAI_API_KEY"):
        return OpenAILLM(api_key=environ["OPENAI_API_KEY"])
    engine_key = getattr(agent.engine, "_api_key", None)
    if isinstance(engine_key, str) and engine_key and agent.provider == "openai_realtime":
        return OpenAILLM(api_key=engine_key, base_url=getattr(agent.engine, "base_url", None) or _OPENAI)
    raise PatterConfigError(
        "test mode needs something to reply: this agent has no llm= and no on_message was given, and no "
        "OpenAI key is known. Fix: phone.test(agent, on_message=...), give the agent llm=..., or set "
        "OPENAI_API_KEY."
    )


_OPENAI = "https://api.openai.com/v1"


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def run_test_mode(
    agent: Agent,
    on_message: Callback | None = None,
    on_call_start: Callback | None = None,
    on_call_end: Callback | None = None,
    *,
    input: TextIO | None = None,
    output: TextIO | None = None,
    allow_private_webhooks: bool = False,
) -> str:
    """Run one simulated text call (see module doc); returns why it ended."""
    session = TestSession(
        agent,
        on_message=on_message,
        on_call_start=on_call_start,
        on_call_end=on_call_end,
        input=input,
        output=output,
        allow_private_webhooks=allow_private_webhooks,
    )
    return await session.run()


__all__ = ["COMMANDS", "TEST_CALLEE", "TEST_CALLER", "TestSession", "new_test_call_id", "run_test_mode"]
