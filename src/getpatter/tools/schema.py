"""JSON schema for a tool, derived from a typed Python function and its Google-style docstring.

The model only sees what this module produces, so the mapping is deliberately small and predictable:

======================================  ==============================================================
annotation                              schema
======================================  ==============================================================
``str`` / ``int`` / ``float`` / ``bool``  ``string`` / ``integer`` / ``number`` / ``boolean``
``list[X]``, ``Sequence[X]``,           ``array`` with ``items`` from ``X`` (bare ``list`` -> string items)
``tuple[X, ...]``, ``set[X]``
``dict``, ``dict[str, X]``              ``object`` (``additionalProperties`` from ``X`` when given)
``Literal[...]``                        ``enum`` with the values' JSON type (mixed types: enum only)
``enum.Enum`` subclass                  ``enum`` of the members' values
``Optional[X]`` / ``X | None``          schema of ``X``, and the parameter is not required
``X | Y``                               ``anyOf``
``Annotated[X, "text"]``                schema of ``X``; the text is the description unless ``Args:`` has one
``Any``                                 ``{}`` (any JSON value)
no annotation                           ``string`` (the usual meaning of an untyped tool argument)
======================================  ==============================================================

Anything else (a class, a callable, ...) raises ``TypeError`` at decoration time, naming the parameter,
instead of producing a schema the model cannot satisfy. A parameter named ``context`` is not part of the
schema: it receives the call context dict.
"""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from getpatter.errors import PatterTypeError

JsonSchema = dict[str, Any]

#: Name of the optional function parameter that receives the call context instead of a model argument.
CONTEXT_PARAM = "context"

_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]*):\s*$")
_ARG_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_ARG_LINE = re.compile(r"^\*{0,2}(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)$")

_SCALARS: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}
_ARRAY_ORIGINS: tuple[Any, ...] = (list, tuple, set, frozenset, Sequence, AbstractSet, typing.Sequence)
_DICT_ORIGINS: tuple[Any, ...] = (dict, Mapping, typing.Mapping)


@dataclass(frozen=True, slots=True)
class Docstring:
    """The parts of a Google-style docstring a tool schema needs."""

    summary: str
    args: dict[str, str]


@dataclass(frozen=True, slots=True)
class FunctionSchema:
    """What ``@tool`` learns from a function: the model-facing schema and how to call it back."""

    description: str
    parameters: JsonSchema
    param_names: tuple[str, ...]
    required: tuple[str, ...]
    takes_context: bool


def parse_docstring(doc: str | None) -> Docstring:
    """Split a Google-style docstring into its summary (first paragraph) and ``Args:`` descriptions.

    Argument entries look like ``name: text`` or ``name (type): text``; more-indented lines continue the
    previous entry. Other sections (``Returns:``, ``Raises:``, ...) are ignored.
    """
    if not doc:
        return Docstring("", {})
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    index = 0
    while index < len(lines) and lines[index].strip() and not _SECTION.match(lines[index]):
        summary.append(lines[index].strip())
        index += 1
    args: dict[str, str] = {}
    section = ""
    entry_indent = -1
    current = ""
    for line in lines[index:]:
        header = _SECTION.match(line)
        if header is not None:
            section = header.group("title").strip().lower()
            entry_indent, current = -1, ""
            continue
        if section not in _ARG_SECTIONS or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line.strip())
        if match is not None and (entry_indent < 0 or indent <= entry_indent):
            entry_indent = indent
            current = match.group("name")
            args[current] = match.group("text").strip()
        elif current:
            args[current] = f"{args[current]} {line.strip()}".strip()
    return Docstring(" ".join(summary), args)


def schema_for_annotation(annotation: Any, where: str) -> JsonSchema:
    """The JSON schema of one annotation (see the module table); ``where`` names it in errors."""
    schema, _optional = _schema(annotation, where)
    return schema


def _schema(annotation: Any, where: str) -> tuple[JsonSchema, bool]:
    """Return ``(schema, accepts_none)``."""
    if annotation is inspect.Parameter.empty:
        return {"type": "string"}, False
    if annotation is Any:
        return {}, True
    if annotation is None or annotation is type(None):
        return {"type": "null"}, True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner, optional = _schema(args[0], where)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes and "description" not in inner:
            inner = {**inner, "description": " ".join(notes)}
        return inner, optional
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        optional = len(members) < len(args)
        schemas = [_schema(a, where)[0] for a in members]
        if len(schemas) == 1:
            return schemas[0], optional
        return {"anyOf": schemas}, optional
    if origin is typing.Literal:
        return _literal(args, where)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _literal(tuple(member.value for member in annotation), where)
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}, False
    if annotation in _ARRAY_ORIGINS or origin in _ARRAY_ORIGINS:
        return {"type": "array", "items": _items(origin, args, where)}, False
    if annotation in _DICT_ORIGINS or origin in _DICT_ORIGINS:
        schema: JsonSchema = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            schema["additionalProperties"] = _schema(args[1], where)[0]
        return schema, False
    raise PatterTypeError(
        f"{where}: annotation {annotation!r} cannot be described to the model. Use str, int, float, bool, "
        "list[...], dict[str, ...], Literal[...], an Enum, or Optional[...] of these."
    )


def _items(origin: Any, args: tuple[Any, ...], where: str) -> JsonSchema:
    if not args:
        return {"type": "string"}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _schema(args[0], where)[0]
        distinct = {repr(a) for a in args}
        if len(distinct) != 1:
            raise PatterTypeError(
                f"{where}: fixed-shape tuples are not supported; use tuple[X, ...] or list[X]."
            )
    return _schema(args[0], where)[0]


def _literal(values: tuple[Any, ...], where: str) -> tuple[JsonSchema, bool]:
    optional = any(v is None for v in values)
    enum_values = [v for v in values if v is not None]
    if not enum_values:
        return {"type": "null"}, True
    kinds: set[str] = set()
    for value in enum_values:
        # bool before int: True is an int in Python but not in JSON.
        kind = next((name for typ, name in _SCALARS.items() if isinstance(value, typ)), None)
        if kind is None:
            raise PatterTypeError(
                f"{where}: Literal/Enum values must be str, int, float or bool, got {value!r}."
            )
        kinds.add(kind)
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    schema: JsonSchema = {"enum": enum_values}
    if len(kinds) == 1:
        schema = {"type": kinds.pop(), "enum": enum_values}
    return schema, optional


def function_schema(fn: Callable[..., Any]) -> FunctionSchema:
    """Derive the tool schema of ``fn`` from its signature, type hints and Google-style docstring.

    Raises ``TypeError`` for parameters the model cannot fill (positional-only, ``*args``/``**kwargs`` are
    skipped, unsupported annotations) so the mistake shows at import time, not mid-call.
    """
    if not callable(fn):
        raise PatterTypeError(f"@tool needs a function, got {type(fn).__name__}")
    name = getattr(fn, "__name__", type(fn).__name__)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # unresolved forward references etc.
        raise PatterTypeError(f"@tool {name}: cannot resolve type hints ({exc})") from exc
    doc = parse_docstring(inspect.getdoc(fn))
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    names: list[str] = []
    takes_context = False
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise PatterTypeError(
                f"@tool {name}: parameter {param.name!r} is positional-only; tool arguments are passed by "
                "keyword, so remove the '/'."
            )
        if param.name == CONTEXT_PARAM:
            takes_context = True
            continue
        annotation = hints.get(param.name, inspect.Parameter.empty)
        where = f"@tool {name}, parameter {param.name!r}"
        schema, optional = _schema(annotation, where)
        text = doc.args.get(param.name)
        if text:
            schema = {**schema, "description": text}
        properties[param.name] = schema
        names.append(param.name)
        if param.default is inspect.Parameter.empty and not optional:
            required.append(param.name)
    parameters: JsonSchema = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return FunctionSchema(doc.summary, parameters, tuple(names), tuple(required), takes_context)


__all__ = [
    "CONTEXT_PARAM",
    "Docstring",
    "FunctionSchema",
    "JsonSchema",
    "function_schema",
    "parse_docstring",
    "schema_for_annotation",
]
