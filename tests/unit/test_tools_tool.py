"""Tool construction, the tool()/@tool factory-decorator, and dict-tool normalisation (API.md C12)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal

import pytest

from getpatter.errors import PatterConfigError
from getpatter.tools import Tool, ToolArgumentError, normalize_tools, tool


def handler(arguments: dict[str, Any], context: dict[str, Any]) -> str:
    return "ok"


# -- Tool -------------------------------------------------------------------------------------------------


def test_defaults_and_schema() -> None:
    t = Tool("lookup", handler=handler)
    assert t.description == ""
    assert t.parameters == {"type": "object", "properties": {}}
    assert t.transport == "handler"
    assert t.schema() == {
        "name": "lookup",
        "description": "",
        "parameters": {"type": "object", "properties": {}},
    }
    assert Tool("hook", webhook_url="https://example.com/t").transport == "webhook"


def test_is_frozen() -> None:
    t = Tool("lookup", handler=handler)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "other"  # type: ignore[misc]


def test_parameters_are_copied() -> None:
    params: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    t = Tool("lookup", parameters=params, handler=handler)
    params["properties"]["b"] = {"type": "integer"}
    assert t.parameters is not None and list(t.parameters["properties"]) == ["a"]
    schema = t.schema()
    schema["parameters"]["properties"].clear()
    assert list(t.schema()["parameters"]["properties"]) == ["a"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "neither"),
        ({"handler": handler, "webhook_url": "https://example.com"}, "both"),
    ],
)
def test_exactly_one_of_handler_or_webhook(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(PatterConfigError, match=match):
        Tool("lookup", **kwargs)


@pytest.mark.parametrize("name", ["", "has space", "x" * 65, "dots.no", "ünï"])
def test_invalid_names(name: str) -> None:
    with pytest.raises(PatterConfigError, match="Fix: name="):
        Tool(name, handler=handler)


@pytest.mark.parametrize("name", ["a", "get-weather", "A_1", "x" * 64])
def test_valid_names(name: str) -> None:
    assert Tool(name, handler=handler).name == name


@pytest.mark.parametrize("name", ["transfer_call", "end_call"])
def test_reserved_names(name: str) -> None:
    with pytest.raises(PatterConfigError, match="reserved"):
        Tool(name, handler=handler)


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        Tool("bad name", handler=handler)


@pytest.mark.parametrize(
    "parameters",
    [
        {"properties": {}},
        {"type": "array"},
        {"type": "object", "properties": []},
        {"type": "object", "properties": {"a": "string"}},
        {"type": "object", "properties": {}, "required": "a"},
        {"type": "object", "properties": {"a": {}}, "required": ["b"]},
        {"type": "object", "properties": {"a": {"default": object()}}},
    ],
)
def test_invalid_parameters(parameters: dict[str, Any]) -> None:
    with pytest.raises(PatterConfigError, match="parameters"):
        Tool("lookup", parameters=parameters, handler=handler)


def test_wrong_types_are_type_errors() -> None:
    with pytest.raises(TypeError):
        Tool(3, handler=handler)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tool("lookup", description=None, handler=handler)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tool("lookup", parameters=["x"], handler=handler)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tool("lookup", handler="not callable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tool("lookup", handler=handler, timeout_s="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Tool("lookup", handler=handler, timeout_s=True)


def test_handler_must_take_arguments_and_context() -> None:
    with pytest.raises(TypeError, match=r"\(arguments, context\)"):
        Tool("lookup", handler=lambda arguments: "x")  # type: ignore[arg-type,misc]
    Tool("lookup", handler=lambda *args: "x")  # accepts two positionals


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/x", "https://", " https://example.com"])
def test_invalid_webhook_url(url: str) -> None:
    with pytest.raises(PatterConfigError, match="webhook_url"):
        Tool("hook", webhook_url=url)


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
def test_invalid_timeout(value: float) -> None:
    with pytest.raises(PatterConfigError, match="timeout_s"):
        Tool("lookup", handler=handler, timeout_s=value)


# -- tool() factory ------------------------------------------------------------------------------------------


def test_factory_with_handler_and_webhook() -> None:
    t = tool("lookup", "Find it", None, handler)
    assert (t.name, t.description, t.handler) == ("lookup", "Find it", handler)
    w = tool(name="hook", webhook_url="https://example.com/h", timeout_s=3)
    assert (w.webhook_url, w.timeout_s) == ("https://example.com/h", 3)


# -- @tool decorator ---------------------------------------------------------------------------------------


@tool
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: City name.
        unit: Temperature unit.
    """
    return {"city": city, "unit": unit}


@tool(name="check_stock", description="Stock check.", timeout_s=2)
async def stock(sku: str, context: dict[str, Any]) -> str:
    """Ignored summary."""
    await asyncio.sleep(0)
    return f"{sku}@{context['call_id']}"


def test_bare_decorator_builds_tool() -> None:
    assert isinstance(get_weather, Tool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Current weather for a city."
    assert get_weather.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name."},
            "unit": {"type": "string", "enum": ["c", "f"], "description": "Temperature unit."},
        },
        "required": ["city"],
    }


def test_decorator_with_arguments_overrides() -> None:
    assert isinstance(stock, Tool)
    assert (stock.name, stock.description, stock.timeout_s) == ("check_stock", "Stock check.", 2)
    assert stock.parameters == {
        "type": "object",
        "properties": {"sku": {"type": "string"}},
        "required": ["sku"],
    }


def test_decorator_with_parameters_override() -> None:
    params = {"type": "object", "properties": {"q": {"type": "string"}}}

    @tool(parameters=params)
    def search(q: str = "") -> str:
        return q

    assert search.parameters == params


def test_generated_sync_handler_filters_unknown_keys() -> None:
    assert get_weather.handler is not None
    result = get_weather.handler({"city": "Rome", "bogus": 1, "context": "x"}, {"call_id": "c1"})
    assert result == {"city": "Rome", "unit": "c"}


async def test_generated_async_handler_passes_context() -> None:
    assert stock.handler is not None
    assert await stock.handler({"sku": "A1", "junk": True}, {"call_id": "c9"}) == "A1@c9"


def test_generated_handler_reports_missing_required_argument() -> None:
    assert get_weather.handler is not None
    with pytest.raises(ToolArgumentError, match="city"):
        get_weather.handler({"unit": "f"}, {})


def test_decorator_refuses_reserved_name_and_bad_function() -> None:
    with pytest.raises(PatterConfigError, match="reserved"):

        @tool
        def end_call() -> str:
            return ""

    with pytest.raises(TypeError):
        tool(name="x")(42)  # type: ignore[arg-type]


# -- dict tools and normalize_tools ------------------------------------------------------------------------


def test_plain_dict_tool() -> None:
    [t] = normalize_tools([{"name": "lookup", "description": "d", "handler": handler, "timeout_s": 4}])
    assert (t.name, t.description, t.handler, t.timeout_s) == ("lookup", "d", handler, 4)


def test_openai_style_dict_tool() -> None:
    params = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    spec = {
        "type": "function",
        "function": {"name": "search", "description": "Search.", "parameters": params, "strict": False},
        "webhook_url": "https://example.com/search",
    }
    [t] = normalize_tools([spec])
    assert t.schema() == {"name": "search", "description": "Search.", "parameters": params}
    assert t.webhook_url == "https://example.com/search"
    inside = {"type": "function", "function": {"name": "s2", "handler": handler}}
    assert normalize_tools([inside])[0].handler is handler


def test_tools_and_dicts_mix_in_order() -> None:
    tools = normalize_tools([get_weather, {"name": "b", "handler": handler}, stock])
    assert [t.name for t in tools] == ["get_weather", "b", "check_stock"]
    assert normalize_tools(None) == []
    assert normalize_tools(()) == []


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"description": "no name", "handler": handler}, "missing 'name'"),
        ({"name": "x", "handler": handler, "webhook": "https://e.com"}, "unknown key"),
        ({"type": "function", "name": "x"}, "OpenAI-style"),
        ({"type": "retrieval", "function": {"name": "x"}}, "OpenAI-style"),
        ({"type": "function", "function": {"name": "x", "handler": handler}, "handler": handler}, "both"),
        ({"name": "x"}, "neither"),
    ],
)
def test_bad_dict_tools(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(PatterConfigError, match=match):
        normalize_tools([spec])


def test_duplicate_names_refused() -> None:
    with pytest.raises(PatterConfigError, match=r"duplicate tool name 'get_weather'"):
        normalize_tools([get_weather, {"name": "get_weather", "handler": handler}])


@pytest.mark.parametrize("tools", ["lookup", {"name": "x", "handler": handler}, 3])
def test_tools_must_be_a_list(tools: Any) -> None:
    with pytest.raises(TypeError, match="tools must be a list"):
        normalize_tools(tools)


def test_garbage_entries_are_type_errors() -> None:
    with pytest.raises(TypeError, match=r"tools\[1\]"):
        normalize_tools([get_weather, 42])  # type: ignore[list-item]

    def plain(city: str) -> str:
        return city

    with pytest.raises(TypeError, match="@tool"):
        normalize_tools([plain])  # type: ignore[list-item]


def test_tools_are_hashable() -> None:
    assert len({get_weather, stock, get_weather}) == 2


def test_tools_package_does_not_import_call_or_server_layers() -> None:
    import ast
    import pathlib

    import getpatter.tools

    package = pathlib.Path(getpatter.tools.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("getpatter.call", "getpatter.server")), (
                    f"{path.name} imports {name}"
                )
