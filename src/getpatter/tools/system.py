"""The built-in call-control tools the model always gets: ``transfer_call`` and ``end_call``.

The call layer owns the actual carrier actions; it hands the executor one async handler per system tool
(``handler(arguments) -> str``). This module owns the model-facing contract of those tools: their schemas,
the reserved names user tools may not take, and argument validation done *before* the handler runs (a
transfer to an invalid number must never reach the carrier).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from getpatter.errors import PatterConfigError, PatterTypeError
from getpatter.validation import validate_e164

TRANSFER_CALL = "transfer_call"
END_CALL = "end_call"
#: Names user tools may not use: the executor adds these itself when the call layer provides handlers.
RESERVED_TOOL_NAMES: frozenset[str] = frozenset({TRANSFER_CALL, END_CALL})

SystemHandler = Callable[[dict[str, Any]], Awaitable[str]]

_SCHEMAS: dict[str, dict[str, Any]] = {
    TRANSFER_CALL: {
        "name": TRANSFER_CALL,
        "description": (
            "Transfer the caller to another phone number, for example a human agent or another department. "
            "Use only when the caller asks for it or the task requires it."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "number": {
                    "type": "string",
                    "description": "Destination in E.164 format (e.g. +15551234567).",
                }
            },
            "required": ["number"],
        },
    },
    END_CALL: {
        "name": END_CALL,
        "description": (
            "Hang up the call. Use when the conversation is finished and you have said goodbye, or when the "
            "caller asks to end the call."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "description": "Short reason for ending the call."},
            },
        },
    },
}


class SystemToolArgumentError(ValueError):
    """The model called a system tool with arguments that must not reach the carrier."""


def system_tool_schema(name: str) -> dict[str, Any]:
    """A fresh copy of the ``{"name", "description", "parameters"}`` schema of a system tool."""
    return copy.deepcopy(_SCHEMAS[name])


def validate_system_handlers(handlers: Mapping[str, SystemHandler] | None) -> dict[str, SystemHandler]:
    """Check the call layer's handler mapping: only reserved names, callable values."""
    if handlers is None:
        return {}
    if not isinstance(handlers, Mapping):
        raise PatterTypeError(
            f"system_handlers must be a mapping of tool name to handler, got {type(handlers).__name__}"
        )
    result: dict[str, SystemHandler] = {}
    for name, handler in handlers.items():
        if name not in RESERVED_TOOL_NAMES:
            raise PatterConfigError(
                f"system_handlers: unknown system tool {name!r}. Fix: use only {sorted(RESERVED_TOOL_NAMES)}."
            )
        if not callable(handler):
            raise PatterTypeError(
                f"system_handlers[{name!r}] must be an async callable, got {type(handler).__name__}"
            )
        result[name] = handler
    return result


def system_arguments(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and reduce the model's arguments to what the system handler receives.

    ``transfer_call`` needs ``number`` in E.164 form (raises :class:`SystemToolArgumentError` otherwise,
    with a message the model can act on); ``end_call`` takes an optional ``reason`` string.
    """
    if name == TRANSFER_CALL:
        number = arguments.get("number")
        if not isinstance(number, str):
            raise SystemToolArgumentError(
                "transfer_call needs 'number', an E.164 phone number like +15551234567"
            )
        try:
            return {"number": validate_e164(number.strip(), "number")}
        except PatterConfigError as exc:
            raise SystemToolArgumentError(f"transfer_call refused: {exc}") from None
    if name == END_CALL:
        reason = arguments.get("reason", "")
        return {"reason": reason if isinstance(reason, str) else str(reason)}
    raise KeyError(name)


__all__ = [
    "END_CALL",
    "RESERVED_TOOL_NAMES",
    "TRANSFER_CALL",
    "SystemHandler",
    "SystemToolArgumentError",
    "system_arguments",
    "system_tool_schema",
    "validate_system_handlers",
]
