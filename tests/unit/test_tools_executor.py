"""ToolExecutor: handler tools, system tools, and every failure turned into a model-readable error."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from typing import Any

import pytest

from getpatter.errors import PatterConfigError
from getpatter.tools import Tool, ToolExecutor, ToolOutcome, tool


@tool
def add(a: int, b: int = 1) -> dict[str, int]:
    """Add two numbers."""
    return {"sum": a + b}


@tool
async def whoami(context: dict[str, Any]) -> str:
    """The caller's number."""
    return str(context["caller"])


def error_of(outcome: ToolOutcome) -> str:
    assert outcome.is_error
    payload = json.loads(outcome.result)
    assert payload["fallback"] is True
    assert set(payload) == {"error", "fallback"}
    return str(payload["error"])


class Recorder:
    """An async system handler that records what it was given."""

    def __init__(self, answer: str = "done") -> None:
        self.calls: list[dict[str, Any]] = []
        self.answer = answer

    async def __call__(self, arguments: dict[str, Any]) -> str:
        self.calls.append(arguments)
        return self.answer


CONTEXT = {"call_id": "CA1", "caller": "+15550001111", "callee": "+15550002222"}


async def test_decorated_tools_run_with_json_arguments() -> None:
    async with ToolExecutor([add, whoami], context=dict(CONTEXT)) as ex:
        out = await ex.execute("add", '{"a": 2, "b": 5, "extra": "dropped"}')
        assert out == ToolOutcome(
            "add", {"a": 2, "b": 5, "extra": "dropped"}, '{"sum": 7}', False, out.duration_ms
        )
        assert out.duration_ms >= 0
        assert (await ex.execute("whoami", "{}")).result == "+15550001111"


async def test_sync_handler_runs_in_a_worker_thread_with_arguments_and_context() -> None:
    seen: dict[str, Any] = {}

    def handler(arguments: dict[str, Any], context: dict[str, Any]) -> str:
        seen.update(thread=threading.get_ident(), arguments=arguments, context=context)
        return "plain text"

    context = dict(CONTEXT)
    async with ToolExecutor([Tool("t", handler=handler)], context=context) as ex:
        out = await ex.execute("t", '{"x": 1}')
    assert (out.result, out.is_error) == ("plain text", False)
    assert seen["thread"] != threading.get_ident()
    assert seen["arguments"] == {"x": 1}
    assert seen["context"] is context


async def test_async_handler_and_result_encoding() -> None:
    async def as_list(arguments: dict[str, Any], context: dict[str, Any]) -> list[str]:
        return ["a", "é"]

    def as_none(arguments: dict[str, Any], context: dict[str, Any]) -> None:
        return None

    tools = [Tool("l", handler=as_list), Tool("n", handler=as_none)]
    async with ToolExecutor(tools, context={}) as ex:
        assert (await ex.execute("l", "")).result == '["a", "é"]'
        assert (await ex.execute("n", "")).result == "null"


async def test_context_is_kept_by_reference() -> None:
    context: dict[str, Any] = {"caller": "unknown"}
    async with ToolExecutor([whoami], context=context) as ex:
        context["caller"] = "+15559998888"
        assert (await ex.execute("whoami", "{}")).result == "+15559998888"


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ("3", "JSON object"),
    ],
)
async def test_bad_arguments_become_error_payload(raw: str, match: str) -> None:
    async with ToolExecutor([add], context={}) as ex:
        out = await ex.execute("add", raw)
    assert match in error_of(out)
    assert out.arguments == {}


async def test_empty_arguments_mean_no_arguments() -> None:
    async with ToolExecutor([whoami], context={"caller": "x"}) as ex:
        out = await ex.execute("whoami", "  ")
    assert (out.result, out.arguments) == ("x", {})


async def test_missing_required_argument_is_reported_to_model() -> None:
    async with ToolExecutor([add], context={}) as ex:
        out = await ex.execute("add", '{"b": 2}')
    assert "missing required argument(s): a" in error_of(out)


async def test_unknown_tool_lists_available_tools() -> None:
    async with ToolExecutor([add], context={}, system_handlers={"end_call": Recorder()}) as ex:
        out = await ex.execute("nope", "{}")
    message = error_of(out)
    assert "unknown tool 'nope'" in message
    assert "add" in message and "end_call" in message


async def test_handler_exception_is_contained_and_call_goes_on() -> None:
    def boom(arguments: dict[str, Any], context: dict[str, Any]) -> str:
        raise RuntimeError("database down")

    async with ToolExecutor([Tool("boom", handler=boom), add], context={}) as ex:
        out = await ex.execute("boom", "{}")
        assert "RuntimeError: database down" in error_of(out)
        assert not (await ex.execute("add", '{"a": 1}')).is_error


async def test_async_handler_timeout_uses_tool_timeout() -> None:
    never = asyncio.Event()

    async def hang(arguments: dict[str, Any], context: dict[str, Any]) -> str:
        await never.wait()
        return "unreachable"

    async with ToolExecutor([Tool("hang", handler=hang, timeout_s=0.05)], context={}) as ex:
        out = await ex.execute("hang", "{}")
    assert "timed out after 0.05s" in error_of(out)


async def test_sync_handler_timeout_uses_default_timeout() -> None:
    release = threading.Event()

    def block(arguments: dict[str, Any], context: dict[str, Any]) -> str:
        release.wait(10)
        return "late"

    try:
        async with ToolExecutor([Tool("block", handler=block)], context={}, default_timeout_s=0.05) as ex:
            out = await ex.execute("block", "{}")
        assert "timed out after 0.05s" in error_of(out)
    finally:
        release.set()


async def test_timeout_error_raised_by_handler_is_not_reported_as_our_timeout() -> None:
    async def raises(arguments: dict[str, Any], context: dict[str, Any]) -> str:
        raise TimeoutError("upstream slow")

    async with ToolExecutor([Tool("t", handler=raises)], context={}) as ex:
        out = await ex.execute("t", "{}")
    assert "TimeoutError: upstream slow" in error_of(out)


def test_timeouts_are_clamped_to_300_s() -> None:
    ex = ToolExecutor([Tool("slow", handler=lambda a, c: "", timeout_s=1000), add], context={})
    assert ex.timeout_for(ex.tools[0]) == 300
    assert ex.timeout_for(ex.tools[1]) == 10
    assert ToolExecutor([], context={}, default_timeout_s=900).timeout_for(ex.tools[1]) == 300


async def test_cancellation_propagates() -> None:
    started = asyncio.Event()

    async def hang(arguments: dict[str, Any], context: dict[str, Any]) -> str:
        started.set()
        await asyncio.Event().wait()
        return ""

    async with ToolExecutor([Tool("hang", handler=hang)], context={}) as ex:
        task = asyncio.create_task(ex.execute("hang", "{}"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_outcome_is_frozen() -> None:
    out = ToolOutcome("a", {}, "", False, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.result = "x"  # type: ignore[misc]


# -- schemas and system tools ------------------------------------------------------------------------------


def test_schemas_user_tools_then_enabled_system_tools() -> None:
    ex = ToolExecutor(
        [add], context={}, system_handlers={"transfer_call": Recorder(), "end_call": Recorder()}
    )
    schemas = ex.schemas()
    assert [s["name"] for s in schemas] == ["add", "transfer_call", "end_call"]
    assert all(set(s) == {"name", "description", "parameters"} for s in schemas)
    transfer = schemas[1]["parameters"]
    assert transfer["properties"]["number"]["type"] == "string"
    assert transfer["required"] == ["number"]
    assert schemas[2]["parameters"]["properties"]["reason"] == {
        "type": "string",
        "description": "Short reason for ending the call.",
    }
    schemas[1]["parameters"]["required"].clear()  # callers get copies
    assert ex.schemas()[1]["parameters"]["required"] == ["number"]


def test_system_tools_absent_without_handlers() -> None:
    assert [s["name"] for s in ToolExecutor([add], context={}).schemas()] == ["add"]
    only_end = ToolExecutor(None, context={}, system_handlers={"end_call": Recorder()})
    assert [s["name"] for s in only_end.schemas()] == ["end_call"]


async def test_transfer_call_validates_e164_before_the_handler() -> None:
    transfer = Recorder("transferring")
    async with ToolExecutor([], context={}, system_handlers={"transfer_call": transfer}) as ex:
        ok = await ex.execute("transfer_call", '{"number": "+15551234567", "junk": 1}')
        assert (ok.result, ok.is_error) == ("transferring", False)
        assert transfer.calls == [{"number": "+15551234567"}]
        for bad in (
            '{"number": "555-1234"}',
            '{"number": "+1 555 123 4567"}',
            "{}",
            '{"number": 15551234567}',
        ):
            out = await ex.execute("transfer_call", bad)
            assert "transfer_call" in error_of(out)
    assert len(transfer.calls) == 1  # no invalid number reached the carrier


async def test_end_call_passes_reason() -> None:
    end = Recorder("bye")
    async with ToolExecutor([], context={}, system_handlers={"end_call": end}) as ex:
        assert (await ex.execute("end_call", '{"reason": "caller said goodbye"}')).result == "bye"
        assert (await ex.execute("end_call", "")).result == "bye"
    assert end.calls == [{"reason": "caller said goodbye"}, {"reason": ""}]


async def test_failing_system_handler_is_contained() -> None:
    async def broken(arguments: dict[str, Any]) -> str:
        raise ConnectionError("carrier unreachable")

    async with ToolExecutor([], context={}, system_handlers={"end_call": broken}) as ex:
        out = await ex.execute("end_call", "{}")
    assert "carrier unreachable" in error_of(out)


# -- constructor validation ----------------------------------------------------------------------------------


def test_constructor_validation() -> None:
    with pytest.raises(PatterConfigError, match="system_handlers"):
        ToolExecutor([], context={}, system_handlers={"hangup": Recorder()})
    with pytest.raises(TypeError):
        ToolExecutor([], context={}, system_handlers={"end_call": "no"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="context"):
        ToolExecutor([], context=None)  # type: ignore[arg-type]
    with pytest.raises(PatterConfigError, match="default_timeout_s"):
        ToolExecutor([], context={}, default_timeout_s=0)
    with pytest.raises(TypeError, match="default_timeout_s"):
        ToolExecutor([], context={}, default_timeout_s="10")  # type: ignore[arg-type]
    with pytest.raises(PatterConfigError, match="duplicate"):
        ToolExecutor([add, add], context={})
    ex = ToolExecutor([{"name": "d", "handler": lambda a, c: "ok"}], context={})
    assert [t.name for t in ex.tools] == ["d"]


async def test_callable_object_with_async_call_is_awaited() -> None:
    class Lookup:
        async def __call__(self, arguments: dict[str, Any], context: dict[str, Any]) -> dict[str, str]:
            return {"thread": "loop" if threading.current_thread() is threading.main_thread() else "worker"}

    async with ToolExecutor([Tool("lookup", handler=Lookup())], context={}) as ex:
        assert (await ex.execute("lookup", "{}")).result == '{"thread": "loop"}'
