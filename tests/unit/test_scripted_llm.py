import json

from getpatter.llm.base import TextDelta, ToolCallRequest
from getpatter.local.scripted import ScriptedLLM, extract_slots

BOOK = {"name": "book_appointment", "description": "", "parameters": {"type": "object", "properties": {}}}


async def _text(llm: ScriptedLLM, messages: list[dict], tools: list[dict] | None = None) -> list[object]:
    return [ev async for ev in llm.stream(messages, tools)]


async def test_keyword_rule_replies_with_variables_filled() -> None:
    events = await _text(
        ScriptedLLM.demo(clinic="Bright Smiles"), [{"role": "user", "content": "ok bye then"}]
    )
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Thanks for calling Bright Smiles. Goodbye!"


async def test_booking_calls_the_tool_then_answers_from_its_result() -> None:
    llm = ScriptedLLM.demo()
    said = [{"role": "user", "content": "Can I book for Friday at 4 pm?"}]
    events = await _text(llm, said, [BOOK])
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert len(calls) == 1 and calls[0].name == "book_appointment"
    assert json.loads(calls[0].arguments) == {"day": "Friday", "time": "4 pm"}
    follow = [
        *said,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": calls[0].id,
                    "type": "function",
                    "function": {"name": "book_appointment", "arguments": calls[0].arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": json.dumps({"confirmation": "AD-77"})},
    ]
    text = "".join(e.text for e in await _text(llm, follow, [BOOK]) if isinstance(e, TextDelta))
    assert text == "You're booked for Friday at 4 pm. Your confirmation number is AD-77."


async def test_without_the_tool_the_booking_rule_falls_back_to_words() -> None:
    events = await _text(ScriptedLLM.demo(), [{"role": "user", "content": "I want an appointment"}])
    assert not any(isinstance(e, ToolCallRequest) for e in events)
    assert "booking an appointment" in "".join(e.text for e in events if isinstance(e, TextDelta))


def test_slots_default_to_a_proposal() -> None:
    assert extract_slots("anything works") == {"day": "Tuesday", "time": "ten a.m."}
    assert extract_slots("tomorrow at 10:30 am") == {"day": "Tomorrow", "time": "10:30 am"}
