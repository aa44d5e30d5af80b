"""Per-call overrides returned by ``on_call_start`` (API.md A.1 row 24), checked before the call uses them.

A mistake here cannot raise at construction (the dict only exists once a call starts), and it must not
drop the call either. So an override set with an unknown or misspelled key, an unsupported key, or a value
of the wrong type is refused as a whole: one clear error in the log naming the key and the fix, and the
call goes on with the agent's own settings. A partial apply would leave the call half configured.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from getpatter.call.agent_spec import Agent

log = logging.getLogger("getpatter.call")

#: Keys an override dict may carry, and the type each value must have.
OVERRIDABLE: Final[dict[str, type | tuple[type, ...]]] = {
    "system_prompt": str,
    "voice": str,
    "model": str,
    "language": str,
    "first_message": str,
    "tools": (list, tuple),
    "variables": Mapping,
}
#: Documented for a later release; refused with that reason rather than silently ignored.
NOT_PER_CALL: Final = {
    "provider": "the agent's mode is fixed when it is built; use a second agent",
    "stt_config": "build the agent with the STT you want",
    "tts_config": "build the agent with the TTS you want",
}


def apply_overrides(agent: Agent, overrides: Any, *, call_id: str = "") -> tuple[Agent, Mapping[str, Any]]:
    """``(agent for this call, extra variables)``; ``(agent, {})`` when ``overrides`` is None or refused.
    A key whose value is ``None`` keeps the agent's setting."""
    if overrides is None:
        return agent, {}
    problem = _problem(overrides)
    if problem:
        log.error(
            "call %s: on_call_start returned overrides that cannot be used (%s); this call goes on with the "
            "agent's own settings. Overridable keys: %s",
            call_id,
            problem,
            ", ".join(OVERRIDABLE),
        )
        return agent, {}
    assert isinstance(overrides, Mapping)
    changes = {k: v for k, v in overrides.items() if k != "variables" and v is not None}
    if "tools" in changes:
        changes["tools"] = tuple(changes["tools"])
    return (replace(agent, **changes) if changes else agent), overrides.get("variables") or {}


def _problem(overrides: Any) -> str:
    if not isinstance(overrides, Mapping):
        return f"expected a dict or None, got {type(overrides).__name__}"
    for key, value in overrides.items():
        if key in NOT_PER_CALL:
            return f"{key!r} cannot be overridden per call: {NOT_PER_CALL[key]}"
        if key not in OVERRIDABLE:
            close = difflib.get_close_matches(str(key), OVERRIDABLE, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"unknown key {key!r}{hint}"
        expected = OVERRIDABLE[key]
        if value is not None and not isinstance(value, expected):
            types = expected if isinstance(expected, tuple) else (expected,)
            names = " or ".join(t.__name__ for t in types)
            return f"{key!r} must be a {names}, got {type(value).__name__}"
    return ""
