"""Tools and guardrails in the forms Patter documents (python-sdk/tools, python-sdk/guardrails, agents).

Documented facts exercised here:
* a tool is a dict with ``name``, ``description``, ``parameters`` and one of ``webhook_url`` / ``handler``;
  "providing neither raises a ValueError";
* ``Patter.tool(name=..., description=..., parameters=..., handler=...)`` builds an in-process tool;
* ``Patter.guardrail(name=..., blocked_terms=[...], check=..., replacement=...)`` with the default
  replacement "I'm sorry, I can't respond to that."; guardrails go in ``phone.agent(guardrails=[...])``;
* the agent's ``guardrails`` is ``None`` when none are given.
Mistakes are refused when the agent is built (issue 21 item 6), naming the entry and the fix.
"""

from __future__ import annotations

from typing import Any

import pytest

from getpatter import Agent, Patter, PatterConfigError, PatterTypeError, Tool, guardrail, tool
from getpatter.guardrails import Guardrail, first_blocking

PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"date": {"type": "string", "description": "YYYY-MM-DD"}},
    "required": ["date"],
}


def webhook_dict(name: str = "check_availability") -> dict[str, Any]:
    return {
        "name": name,
        "description": "Check if a table is available.",
        "parameters": PARAMS,
        "webhook_url": "https://api.example.com/reservations/check",
    }


async def check_inventory(arguments: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    return {"in_stock": True, "product_id": arguments["product_id"]}


def test_raw_dict_tools_are_accepted_and_normalized(phone: Patter) -> None:
    agent = phone.agent(system_prompt="You take reservations.", tools=[webhook_dict(), webhook_dict("book")])
    assert [t.name for t in agent.tools] == ["check_availability", "book"]
    first = agent.tools[0]
    assert isinstance(first, Tool)
    assert first.transport == "webhook"
    assert first.webhook_url == "https://api.example.com/reservations/check"
    assert first.schema()["parameters"]["required"] == ["date"]


def test_dict_tool_with_in_process_handler(phone: Patter) -> None:
    spec = {
        "name": "check_inventory",
        "description": "Stock.",
        "parameters": PARAMS,
        "handler": check_inventory,
    }
    agent = phone.agent(system_prompt="x", tools=[spec])
    assert agent.tools[0].transport == "handler"


def test_patter_tool_static_factory(phone: Patter) -> None:
    made = Patter.tool(
        name="check_inventory",
        description="Check if a product is in stock.",
        parameters={"type": "object", "properties": {"product_id": {"type": "string"}}},
        handler=check_inventory,
    )
    assert isinstance(made, Tool) and made.handler is not None
    assert phone.agent(system_prompt="x", tools=[made]).tools == (made,)


def test_tool_without_handler_or_webhook_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"exactly one of handler= .* or webhook_url="):
        Tool(name="lookup", description="d", parameters=PARAMS)


def test_dict_tool_without_handler_or_webhook_refused_at_agent_build(phone: Patter) -> None:
    spec = {"name": "lookup", "description": "d", "parameters": PARAMS}
    with pytest.raises(ValueError) as info:
        phone.agent(system_prompt="x", tools=[webhook_dict(), spec])
    assert isinstance(info.value, PatterConfigError)
    assert str(info.value).startswith("tools[1]: ")
    assert "handler=" in str(info.value) and "webhook_url=" in str(info.value)


def test_tool_factory_without_handler_refused_in_tools_with_patter_class(phone: Patter) -> None:
    pending = tool(name="lookup", description="d", parameters=PARAMS)  # Patter: ValueError right here
    with pytest.raises(ValueError) as info:
        phone.agent(system_prompt="x", tools=[pending])
    message = str(info.value)
    assert isinstance(info.value, PatterConfigError)
    assert "tools[0] is tool(name='lookup') without handler= or webhook_url=" in message
    assert "@tool" in message  # names our decorator form


def test_tool_factory_without_handler_still_decorates() -> None:
    @tool(name="lookup_order", description="Find an order.")
    def lookup(order_id: str) -> str:
        return order_id

    assert isinstance(lookup, Tool)
    assert lookup.name == "lookup_order"
    assert lookup.schema()["parameters"]["required"] == ["order_id"]


def test_plain_function_refused_at_agent_build(phone: Patter) -> None:
    def get_weather(city: str) -> str:
        return city

    with pytest.raises(PatterConfigError) as info:
        phone.agent(system_prompt="x", tools=[webhook_dict(), get_weather])
    assert isinstance(info.value, TypeError)
    assert "tools[1] is the plain function 'get_weather'" in str(info.value)
    assert "@tool" in str(info.value)


def test_duplicate_tool_names_refused_at_agent_build(phone: Patter) -> None:
    with pytest.raises(PatterConfigError, match=r"tools\[1\]: duplicate tool name 'check_availability'"):
        phone.agent(system_prompt="x", tools=[webhook_dict(), webhook_dict()])


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (
            {"name": "x", "description": "d", "parameters": {"type": "array"}, "webhook_url": "https://a.io"},
            "'type': 'object'",
        ),
        ({"description": "d", "webhook_url": "https://a.io"}, "missing 'name'"),
        ({"name": "x", "webhook": "https://a.io"}, "unknown key(s) ['webhook']"),
        ({"name": "x", "webhook_url": "ftp://a.io"}, "not an http(s) URL"),
        ({"name": "bad name!", "webhook_url": "https://a.io"}, "name='bad_name'"),
    ],
)
def test_invalid_dict_tools_name_the_entry(phone: Patter, entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PatterConfigError) as info:
        phone.agent(system_prompt="x", tools=[entry])
    assert str(info.value).startswith("tools[0]")
    assert fragment in str(info.value)


def test_agent_built_directly_validates_tools_too() -> None:
    with pytest.raises(PatterConfigError, match=r"tools\[0\]"):
        Agent(system_prompt="x", tools=({"name": "x"},))  # type: ignore[arg-type]


def test_patter_guardrail_factory_and_default_replacement(phone: Patter) -> None:
    rail = Patter.guardrail(name="No medical advice", blocked_terms=["diagnosis", "prescription"])
    assert isinstance(rail, Guardrail)
    assert rail.replacement == "I'm sorry, I can't respond to that."
    agent = phone.agent(system_prompt="x", guardrails=[rail])
    assert agent.guardrails == (rail,)
    assert first_blocking("Your DIAGNOSIS is fine", agent.guardrails) is rail


def test_guardrails_as_dicts_are_accepted(phone: Patter) -> None:
    agent = phone.agent(
        system_prompt="x",
        guardrails=[
            {"name": "No competitors", "blocked_terms": ["RivalCorp"], "replacement": "Only our products."},
            {"name": "No phone numbers", "check": lambda text: "555" in text},
        ],
    )
    assert agent.guardrails is not None
    first, second = agent.guardrails
    assert (first.name, first.replacement) == ("No competitors", "Only our products.")
    assert second.replacement == "I'm sorry, I can't respond to that."
    assert first_blocking("rivalcorp is cheaper", agent.guardrails) is first
    assert first_blocking("call 555 0100", agent.guardrails) is second
    assert first_blocking("hello", agent.guardrails) is None


def test_agent_guardrails_default_is_none(phone: Patter) -> None:
    assert phone.agent(system_prompt="x").guardrails is None
    assert Agent(system_prompt="x").guardrails is None


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        (lambda text: False, "guardrail(name='my_check', check=<lambda>)"),
        ("diagnosis", "blocked_terms=['price']"),
        (["diagnosis"], "not a guardrail"),
        (42, "not a guardrail"),
    ],
)
def test_non_guardrail_entries_refused_at_agent_build(phone: Patter, entry: Any, fragment: str) -> None:
    with pytest.raises(PatterConfigError) as info:
        phone.agent(system_prompt="x", guardrails=[guardrail("ok", blocked_terms=["x"]), entry])
    assert isinstance(info.value, TypeError)
    assert str(info.value).startswith("guardrails[1] is a ")
    assert fragment in str(info.value)


def test_invalid_guardrail_dicts_name_the_entry(phone: Patter) -> None:
    with pytest.raises(PatterConfigError, match=r"guardrails\[0\]: unknown key\(s\) \['terms'\]"):
        phone.agent(system_prompt="x", guardrails=[{"name": "x", "terms": ["a"]}])
    with pytest.raises(PatterConfigError, match=r"guardrails\[0\]: missing 'name'"):
        phone.agent(system_prompt="x", guardrails=[{"blocked_terms": ["a"]}])
    with pytest.raises(PatterConfigError, match=r"guardrails\[0\]: Guardrail 'x' blocks nothing"):
        phone.agent(system_prompt="x", guardrails=[{"name": "x"}])


def test_wrong_container_types_are_type_errors(phone: Patter) -> None:
    with pytest.raises(PatterTypeError, match="tools must be a list"):
        phone.agent(system_prompt="x", tools=webhook_dict())  # type: ignore[arg-type]
    with pytest.raises(PatterTypeError, match="guardrails must be a list"):
        phone.agent(system_prompt="x", guardrails=guardrail("g", blocked_terms=["a"]))  # type: ignore[arg-type]
