"""``Tool``: one function the model may call, run locally (``handler``) or remotely (``webhook_url``).

Three ways to get one, all validated the same way at construction so mistakes surface when the agent is
built, not in the middle of a phone call:

* ``Tool(name, description, parameters, handler=fn)`` / ``tool(...)`` with a handler
  ``(arguments: dict, context: dict) -> str | dict`` (sync or async), or ``webhook_url="https://..."``;
* ``@tool`` / ``@tool(name=..., description=..., timeout_s=...)`` on a typed function: the schema comes
  from its type hints and Google-style docstring (:mod:`getpatter.tools.schema`);
* a plain dict, in our shape or OpenAI's ``{"type": "function", "function": {...}}`` (API.md C12),
  normalised by :func:`normalize_tools`.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload
from urllib.parse import urlsplit

from getpatter.errors import ErrorCode, PatterConfigError, PatterError, PatterTypeError
from getpatter.tools.schema import FunctionSchema, function_schema
from getpatter.tools.system import RESERVED_TOOL_NAMES

#: ``handler(arguments, context)``; may return a value or an awaitable of one.
ToolHandler = Callable[[dict[str, Any], dict[str, Any]], Any]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_TOOL_KEYS = ("name", "description", "parameters", "handler", "webhook_url", "timeout_s")
_IGNORED_KEYS = frozenset({"strict"})  # OpenAI function flag; harmless, accepted and dropped


class ToolArgumentError(PatterError, ValueError):
    """The model's arguments do not fit the function (a required argument is missing)."""

    default_code = ErrorCode.INPUT_VALIDATION


def empty_parameters() -> dict[str, Any]:
    """The schema of a tool without arguments."""
    return {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model can call. Exactly one of ``handler`` / ``webhook_url``.

    ``parameters`` is a JSON-schema object (default: no arguments); it is deep-copied, so later changes
    to the caller's dict do not leak in. ``timeout_s`` overrides the executor's default (10 s) and is
    clamped to 300 s when run.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    handler: ToolHandler | None = None
    webhook_url: str = ""
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.description, str):
            raise PatterTypeError(
                f"Tool {self.name!r}: description must be a str, got {type(self.description).__name__}"
            )
        object.__setattr__(self, "parameters", _check_parameters(self.parameters, self.name))
        if not isinstance(self.webhook_url, str):
            raise PatterTypeError(
                f"Tool {self.name!r}: webhook_url must be a str, got {type(self.webhook_url).__name__}"
            )
        if (self.handler is None) == (not self.webhook_url):
            raise PatterConfigError(
                f"Tool {self.name!r}: pass exactly one of handler= (a function run in this process) or "
                "webhook_url= (an https:// endpoint), got "
                f"{'both' if self.handler is not None else 'neither'}."
            )
        if self.handler is not None:
            _check_handler(self.handler, self.name)
        else:
            _check_webhook_url(self.webhook_url, self.name)
        _check_timeout(self.timeout_s, f"Tool {self.name!r}: timeout_s")

    def __hash__(self) -> int:  # parameters is a dict, so hash what identifies the tool
        return hash((self.name, self.handler, self.webhook_url))

    @property
    def transport(self) -> Literal["handler", "webhook"]:
        """How the tool runs: in-process handler or HTTP webhook."""
        return "handler" if self.handler is not None else "webhook"

    def schema(self) -> dict[str, Any]:
        """The provider-neutral ``{"name", "description", "parameters"}`` (a fresh copy)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise PatterTypeError(f"Tool name must be a str, got {type(name).__name__}")
    if not _NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-zA-Z0-9_-]+", "_", name).strip("_")[:64] or "my_tool"
        raise PatterConfigError(
            f"Tool name {name!r} is invalid: use 1-64 letters, digits, '_' or '-'. Fix: name={suggestion!r}."
        )
    if name in RESERVED_TOOL_NAMES:
        raise PatterConfigError(
            f"Tool name {name!r} is reserved: getpatter adds the built-in {name} tool to every call itself. "
            "Fix: pick another name for your tool."
        )


def _check_parameters(value: object, name: str) -> dict[str, Any]:
    where = f"Tool {name!r}: parameters"
    if value is None:
        return empty_parameters()
    if not isinstance(value, Mapping):
        raise PatterTypeError(f"{where} must be a dict (a JSON schema), got {type(value).__name__}")
    fix = "Fix: parameters={'type': 'object', 'properties': {'city': {'type': 'string'}}}."
    if value.get("type") != "object":
        raise PatterConfigError(f"{where} must be a JSON-schema object with 'type': 'object'. {fix}")
    properties = value.get("properties", {})
    if not isinstance(properties, Mapping) or not all(
        isinstance(k, str) and isinstance(v, Mapping) for k, v in properties.items()
    ):
        raise PatterConfigError(f"{where}['properties'] must map argument names to schemas. {fix}")
    required = value.get("required", [])
    if not isinstance(required, list | tuple) or not all(isinstance(r, str) for r in required):
        raise PatterConfigError(f"{where}['required'] must be a list of argument names. {fix}")
    unknown = [r for r in required if r not in properties]
    if unknown:
        raise PatterConfigError(f"{where}['required'] names {unknown} which are not in 'properties'. {fix}")
    result = copy.deepcopy(dict(value))
    result.setdefault("properties", {})
    if "required" in result:
        result["required"] = list(result["required"])
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise PatterConfigError(f"{where} must be JSON-serialisable ({exc}).") from None
    return result


def _check_handler(handler: object, name: str) -> None:
    if not callable(handler):
        raise PatterTypeError(f"Tool {name!r}: handler must be callable, got {type(handler).__name__}")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # some builtins have no signature; trust them
        return
    try:
        signature.bind(object(), object())
    except TypeError:
        raise PatterTypeError(
            f"Tool {name!r}: handler must accept (arguments, context), got a callable with signature "
            f"{signature}. Fix: def handler(arguments, context): ..., or use @tool on a typed function."
        ) from None


def _check_webhook_url(url: str, name: str) -> None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or url != url.strip():
        raise PatterConfigError(
            f"Tool {name!r}: webhook_url={url!r} is not an http(s) URL. "
            "Fix: webhook_url='https://api.example.com/tools/lookup'."
        )


def _check_timeout(value: object, where: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PatterTypeError(f"{where} must be a number of seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise PatterConfigError(
            f"{where}={value!r} must be a positive number of seconds. Fix: e.g. {where}=10."
        )


def _function_handler(fn: Callable[..., Any], info: FunctionSchema) -> ToolHandler:
    """Wrap ``fn`` as ``handler(arguments, context)``: keyword args filtered to its parameters.

    The wrapper is async exactly when ``fn`` is, so the executor runs sync functions in a thread.
    """
    known = frozenset(info.param_names)

    def keywords(arguments: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        missing = [param for param in info.required if param not in arguments]
        if missing:
            raise ToolArgumentError(f"missing required argument(s): {', '.join(missing)}")
        kwargs = {key: value for key, value in arguments.items() if key in known}
        if info.takes_context:
            kwargs["context"] = context
        return kwargs

    if inspect.iscoroutinefunction(fn):

        async def call_async(arguments: dict[str, Any], context: dict[str, Any]) -> Any:
            return await fn(**keywords(arguments, context))

        return call_async

    def call_sync(arguments: dict[str, Any], context: dict[str, Any]) -> Any:
        return fn(**keywords(arguments, context))

    return call_sync


def tool_from_function(
    fn: Callable[..., Any],
    *,
    name: str = "",
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
    timeout_s: float | None = None,
) -> Tool:
    """Build a :class:`Tool` from a typed function; explicit arguments override what is derived."""
    info = function_schema(fn)
    return Tool(
        name=name or getattr(fn, "__name__", ""),
        description=description or info.description,
        parameters=parameters if parameters is not None else info.parameters,
        handler=_function_handler(fn, info),
        timeout_s=timeout_s,
    )


@overload
def tool(name: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    name: str,
    description: str,
    parameters: Mapping[str, Any] | None,
    handler: ToolHandler,
    webhook_url: str = "",
    timeout_s: float | None = None,
) -> Tool: ...
@overload
def tool(
    name: str,
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
    *,
    handler: ToolHandler,
    webhook_url: str = "",
    timeout_s: float | None = None,
) -> Tool: ...
@overload
def tool(
    name: str,
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
    handler: None = None,
    *,
    webhook_url: str,
    timeout_s: float | None = None,
) -> Tool: ...
@overload
def tool(
    name: str = "",
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout_s: float | None = None,
) -> ToolDecorator: ...
def tool(
    name: str | Callable[..., Any] = "",
    description: str = "",
    parameters: Mapping[str, Any] | None = None,
    handler: ToolHandler | None = None,
    webhook_url: str = "",
    timeout_s: float | None = None,
) -> Tool | ToolDecorator:
    """Factory and decorator in one.

    * ``@tool`` on a function -> :class:`Tool` with a derived schema;
    * ``@tool(name=..., description=..., timeout_s=...)`` -> the same, with overrides;
    * ``tool(name, ..., handler=...)`` or ``tool(name, ..., webhook_url=...)`` -> :class:`Tool`, like the
      constructor.
    """
    if callable(name):
        return tool_from_function(name)
    if handler is not None or webhook_url:
        return Tool(name, description, parameters, handler, webhook_url, timeout_s)
    return ToolDecorator(name, description, parameters, timeout_s)


@dataclass(frozen=True, slots=True)
class ToolDecorator:
    """What ``tool(name=...)`` without ``handler=``/``webhook_url=`` returns: a decorator for a function.

    In the existing Patter SDK the same call raises ``ValueError`` ("neither handler nor webhook"). Here it
    is the ``@tool(name=...)`` form, so it cannot fail on the spot; instead :func:`normalize_tools` refuses
    it with a :class:`PatterConfigError` (a ``ValueError``) naming the entry, when it lands in ``tools=``
    without having decorated anything.
    """

    name: str = ""
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    timeout_s: float | None = None

    def __call__(self, fn: Callable[..., Any]) -> Tool:
        return tool_from_function(
            fn,
            name=self.name,
            description=self.description,
            parameters=self.parameters,
            timeout_s=self.timeout_s,
        )


def tool_from_dict(spec: Mapping[str, Any], where: str = "tool") -> Tool:
    """Normalise a dict tool: ours (``name``, ``handler``|``webhook_url``, ...) or OpenAI's function shape.

    In the OpenAI shape, ``handler``/``webhook_url``/``timeout_s`` may sit next to ``"function"`` or
    inside it. Unknown keys are refused (they are usually typos such as ``"webhook"``).
    """
    if "function" in spec or "type" in spec:
        if spec.get("type", "function") != "function" or not isinstance(spec.get("function"), Mapping):
            raise PatterConfigError(
                f"{where}: an OpenAI-style tool needs {{'type': 'function', 'function': {{'name': ..., "
                "'parameters': ...}}}}. Fix: use that shape, or our {'name', 'description', 'parameters', "
                "'handler'|'webhook_url'} shape."
            )
        inner: Mapping[str, Any] = spec["function"]
        outer = {key: value for key, value in spec.items() if key not in ("type", "function")}
        both = sorted(set(inner) & set(outer))
        if both:
            raise PatterConfigError(f"{where}: {both} given both inside and next to 'function'; keep one.")
        merged: dict[str, Any] = {**inner, **outer}
    else:
        merged = dict(spec)
    unknown = sorted(str(key) for key in merged if key not in _TOOL_KEYS and key not in _IGNORED_KEYS)
    if unknown:
        raise PatterConfigError(f"{where}: unknown key(s) {unknown}. Fix: use only {list(_TOOL_KEYS)}.")
    if "name" not in merged:
        raise PatterConfigError(f"{where}: missing 'name'. Fix: add 'name': 'lookup_order'.")
    kwargs = {key: merged[key] for key in _TOOL_KEYS if merged.get(key) is not None}
    return Tool(**kwargs)


def _normalize_entry(item: object, where: str) -> Tool:
    """One ``tools=`` entry as a :class:`Tool`; every refusal names the entry (``tools[2]``) and the fix."""
    if isinstance(item, Tool):
        return item
    if isinstance(item, ToolDecorator):
        label = f"tool(name={item.name!r})" if item.name else "tool()"
        raise PatterConfigError(
            f"{where} is {label} without handler= or webhook_url=, so it can never run (Patter raises "
            "ValueError for this too; in getpatter that call is the @tool(...) decorator form). Fix: add "
            "handler=fn (called with (arguments, context)) or webhook_url='https://...', or put it above "
            "a function: @tool(name=...)."
        )
    if isinstance(item, Mapping):
        try:
            return tool_from_dict(item, where)
        except PatterTypeError as exc:
            raise PatterTypeError(_prefixed(where, exc)) from None
        except PatterConfigError as exc:
            raise PatterConfigError(_prefixed(where, exc)) from None
    if callable(item):
        label = getattr(item, "__name__", type(item).__name__)
        raise PatterTypeError(
            f"{where} is the plain function {label!r}, which has no schema the model could call. Fix: "
            f"decorate it with @tool (schema from its type hints and docstring), or pass "
            f"Tool(name={label!r}, description=..., parameters=..., handler=...)."
        )
    raise PatterTypeError(
        f"{where} must be a Tool, an @tool function or a dict with 'name', 'description', 'parameters' and "
        f"'handler' or 'webhook_url', got {type(item).__name__}."
    )


def _prefixed(where: str, exc: Exception) -> str:
    text = str(exc)
    return text if text.startswith(where) else f"{where}: {text}"


def normalize_tools(tools: Iterable[Tool | Mapping[str, Any]] | None) -> list[Tool]:
    """Turn the user's ``tools=`` value into a list of :class:`Tool` with unique names.

    ``None`` -> ``[]``. A non-list, or an entry that is neither a ``Tool`` nor a dict, raises
    :class:`PatterTypeError`; invalid dicts, ``tool(name=...)`` without a handler, and duplicate names raise
    :class:`PatterConfigError`. Both are ``PatterConfigError`` naming the entry and the fix.
    """
    if tools is None:
        return []
    if isinstance(tools, str | bytes | Mapping | Tool) or not isinstance(tools, Iterable):
        raise PatterTypeError(
            f"tools must be a list of Tool or dict, got {type(tools).__name__}. Fix: tools=[my_tool]."
        )
    result: list[Tool] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(tools):
        where = f"tools[{index}]"
        normalized = _normalize_entry(item, where)
        if normalized.name in seen:
            raise PatterConfigError(
                f"{where}: duplicate tool name {normalized.name!r} (also tools[{seen[normalized.name]}]). "
                "Fix: give every tool a unique name."
            )
        seen[normalized.name] = index
        result.append(normalized)
    return result


__all__ = [
    "Tool",
    "ToolArgumentError",
    "ToolDecorator",
    "ToolHandler",
    "empty_parameters",
    "normalize_tools",
    "tool",
    "tool_from_dict",
    "tool_from_function",
]
