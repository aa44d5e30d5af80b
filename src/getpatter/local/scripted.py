"""``ScriptedLLM``: a deterministic keyword agent that speaks the LLM interface, tool calls included.

For demos and tests with no model at all: each rule matches keywords in the caller's last message and
either replies from a template or calls a tool first and replies from the tool's result. Templates use
``{name}`` placeholders filled from ``variables``, the tool's JSON result, and words pulled from the
caller's sentence (``{day}``, ``{time}``).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from getpatter.llm.base import LLM, LLMEvent, Message, TextDelta, ToolCallRequest, ToolSchema, Usage

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "tomorrow", "today")
_TIME = re.compile(r"\b(\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)?|noon|morning|afternoon|evening)\b", re.I)
_PLACEHOLDER = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Rule:
    """``keywords``: any of them (whole words, any case) selects the rule, first rule wins."""

    keywords: tuple[str, ...]
    reply: str = ""
    tool: str | None = None
    arguments: Callable[[str], dict[str, Any]] | None = None
    after_tool: str = ""


@dataclass(slots=True)
class ScriptedLLM(LLM):
    rules: Sequence[Rule]
    fallback: str = "Sorry, I didn't catch that. Could you say it another way?"
    variables: Mapping[str, Any] = field(default_factory=dict)
    provider_id: str = "scripted"
    model: str = "scripted"

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> AsyncIterator[LLMEvent]:
        last = messages[-1] if messages else {}
        tool_names = {t["name"] for t in tools or ()}
        if last.get("role") == "tool":
            rule, result = self._answered_tool(messages)
            text = self._render(rule.after_tool if rule else "", result) or self.fallback
        else:
            said = str(last.get("content") or "")
            rule = self._match(said)
            if rule is not None and rule.tool and rule.tool in tool_names:
                args = rule.arguments(said) if rule.arguments else extract_slots(said)
                yield ToolCallRequest(
                    id=f"call_{next(self._ids)}", name=rule.tool, arguments=json.dumps(args)
                )
                yield Usage(input_tokens=_count(messages), output_tokens=8)
                return
            template = rule.reply if rule is not None and rule.reply else self.fallback
            text = self._render(template, extract_slots(said))
        for word in re.findall(r"\S+\s*", text):
            yield TextDelta(word)
        yield Usage(input_tokens=_count(messages), output_tokens=len(text.split()))

    def _match(self, said: str) -> Rule | None:
        words = set(re.findall(r"[a-z']+", said.lower()))
        for rule in self.rules:
            if any(k.lower() in words or (" " in k and k.lower() in said.lower()) for k in rule.keywords):
                return rule
        return None

    def _answered_tool(self, messages: Sequence[Message]) -> tuple[Rule | None, dict[str, Any]]:
        result_text = str(messages[-1].get("content") or "")
        try:
            parsed = json.loads(result_text)
        except ValueError:
            parsed = {"result": result_text}
        result = parsed if isinstance(parsed, dict) else {"result": parsed}
        name = ""
        for message in reversed(messages[:-1]):
            calls = message.get("tool_calls") or []
            if calls:
                name = calls[-1]["function"]["name"]
                args = json.loads(calls[-1]["function"].get("arguments") or "{}")
                result = {**args, **result} if isinstance(args, dict) else result
                break
        rule = next((r for r in self.rules if r.tool == name), None)
        return rule, result

    def _render(self, template: str, extra: Mapping[str, Any]) -> str:
        values = {**self.variables, **extra}
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)

    @classmethod
    def demo(cls, clinic: str = "Acme Dental") -> ScriptedLLM:
        """The receptionist of the offline demo: hours, prices, booking (a real tool call), goodbye."""
        return cls(
            rules=[
                Rule(
                    ("book", "appointment", "schedule", "booking"),
                    tool="book_appointment",
                    after_tool=(
                        "You're booked for {day} at {time}. Your confirmation number is {confirmation}."
                    ),
                ),
                Rule(("open", "hours", "close", "closing"), "We're open Monday to Friday, nine to five."),
                Rule(("cost", "price", "much", "cleaning"), "A cleaning costs eighty dollars."),
                Rule(("bye", "goodbye", "thanks", "thank"), "Thanks for calling {clinic}. Goodbye!"),
                Rule(
                    ("hello", "hi", "hey"), "Hi! I can help with opening hours, prices, or booking a visit."
                ),
            ],
            fallback="I can help with opening hours, prices, or booking an appointment.",
            variables={"clinic": clinic},
        )


def extract_slots(text: str) -> dict[str, str]:
    """Pull a day and a time out of a sentence, with defaults a receptionist would propose."""
    lowered = text.lower()
    day = next((d for d in _DAYS if re.search(rf"\b{d}\b", lowered)), "Tuesday")
    match = _TIME.search(text)
    return {"day": day.capitalize(), "time": match.group(1).strip() if match else "ten a.m."}


def _count(messages: Sequence[Message]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in messages)
