"""What the fake OpenAI Realtime server accepts from a client (``shared/protocols/openai-realtime.md``, GA
shape): the session, item and response fields it knows, and the checks that turn a malformed client event
into :class:`Invalid` (which the fake answers with an ``error`` event, as the real API does). The fake
itself is ``openai_realtime.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

VOICES = {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
_FORMATS = {"audio/pcm", "audio/pcmu", "audio/pcma"}
CLIENT_EVENTS = {
    "session.update": "session_update",
    "input_audio_buffer.append": "audio_append",
    "input_audio_buffer.commit": "audio_commit",
    "input_audio_buffer.clear": "audio_clear",
    "conversation.item.create": "item_create",
    "conversation.item.truncate": "item_truncate",
    "conversation.item.delete": "item_delete",
    "response.create": "response_create",
    "response.cancel": "response_cancel",
}
GA_TO_BETA = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}
_SESSION_KEYS = {
    "type", "model", "instructions", "output_modalities", "audio", "tools", "tool_choice",
    "max_output_tokens", "truncation", "tracing", "prompt", "include",
}  # fmt: skip
_INPUT_KEYS = {"format", "noise_reduction", "transcription", "turn_detection"}
_OUTPUT_KEYS = {"format", "voice", "speed"}
_VAD_KEYS = {
    "server_vad": {"type", "threshold", "prefix_padding_ms", "silence_duration_ms", "create_response",
                   "interrupt_response", "idle_timeout_ms"},
    "semantic_vad": {"type", "eagerness", "create_response", "interrupt_response"},
}  # fmt: skip
_RESPONSE_KEYS = {
    "instructions", "output_modalities", "tool_choice", "tools", "conversation", "input", "metadata",
    "max_output_tokens", "audio", "prompt",
}  # fmt: skip
_ITEM_KEYS = {"id", "type", "object", "status", "role", "content", "call_id", "name", "arguments", "output"}
_PART_TYPES = {"user": {"input_text", "input_audio"}, "system": {"input_text"}, "assistant": {"output_text"}}


class Invalid(Exception):
    """A client event the real API would answer with an ``error`` event."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def default_session(model: str) -> dict[str, Any]:
    """The effective GA session right after connecting (what ``session.created`` carries)."""
    vad = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
    vad = {**vad, "create_response": True, "interrupt_response": True, "idle_timeout_ms": None}
    pcm = {"type": "audio/pcm", "rate": 24000}
    audio_in = {"format": pcm, "transcription": None, "noise_reduction": None, "turn_detection": vad}
    return {
        "id": "sess_fake", "object": "realtime.session", "type": "realtime", "model": model,
        "output_modalities": ["audio"], "instructions": "", "tools": [], "tool_choice": "auto",
        "max_output_tokens": "inf", "tracing": None, "truncation": "auto",
        "audio": {"input": audio_in, "output": {"format": pcm, "voice": "alloy", "speed": 1.0}},
    }  # fmt: skip


def _unknown(keys: Iterable[str], allowed: set[str], where: str) -> None:
    for key in keys:
        if key not in allowed:
            raise Invalid("unknown_parameter", f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}")


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid("invalid_type", f"Invalid type for '{where}': expected an object.", where)
    return value


def _check_format(fmt: object, where: str) -> None:
    f = _obj(fmt, where)
    if f.get("type") not in _FORMATS:
        raise Invalid(
            "invalid_value", f"Invalid value: '{f.get('type')}'. Supported: {sorted(_FORMATS)}.", where
        )
    if f["type"] == "audio/pcm" and f.get("rate", 24000) != 24000:
        raise Invalid("invalid_value", "audio/pcm only supports rate 24000.", where + ".rate")


def _check_vad(vad: object) -> dict[str, Any] | None:
    if vad is None:
        return None
    v = _obj(vad, "session.audio.input.turn_detection")
    if v.get("type") not in _VAD_KEYS:
        raise Invalid(
            "invalid_value", f"Invalid turn_detection type: {v.get('type')!r}.", "turn_detection.type"
        )
    _unknown(v, _VAD_KEYS[v["type"]], "session.audio.input.turn_detection")
    threshold = v.get("threshold", 0.5)
    if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise Invalid("invalid_value", "threshold must be between 0 and 1.", "turn_detection.threshold")
    base = {"prefix_padding_ms": 300, "silence_duration_ms": 500, "create_response": True}
    return {**base, "interrupt_response": True, **v}


def _check_tools(tools: object) -> None:
    if not isinstance(tools, list):
        raise Invalid("invalid_type", "tools must be an array.", "session.tools")
    for i, tool in enumerate(tools):
        t = _obj(tool, f"session.tools[{i}]")
        _unknown(t, {"type", "name", "description", "parameters"}, f"session.tools[{i}]")
        if t.get("type") != "function" or not isinstance(t.get("name"), str) or not t["name"]:
            raise Invalid(
                "invalid_value", "Each tool needs type 'function' and a name.", f"session.tools[{i}]"
            )
        if "parameters" in t:
            _obj(t["parameters"], f"session.tools[{i}].parameters")


def merge_session(config: dict[str, Any], update: object) -> None:
    """Validate a GA ``session`` object and apply it as a partial update (beta fields are refused)."""
    s = _obj(update, "session")
    if s.get("type") != "realtime":
        raise Invalid(
            "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"
        )
    _unknown(s, _SESSION_KEYS, "session")
    if "model" in s and s["model"] != config["model"]:
        raise Invalid("invalid_value", "The session model cannot be changed.", "session.model")
    if s.get("output_modalities", ["audio"]) not in (["audio"], ["text"]):
        raise Invalid(
            "invalid_value", "output_modalities must be ['audio'] or ['text'].", "output_modalities"
        )
    if "instructions" in s and not isinstance(s["instructions"], str):
        raise Invalid("invalid_type", "instructions must be a string.", "session.instructions")
    if "tools" in s:
        _check_tools(s["tools"])
    if s.get("tool_choice", "auto") not in ("auto", "none", "required") and not isinstance(
        s["tool_choice"], dict
    ):
        raise Invalid("invalid_value", "Invalid tool_choice.", "session.tool_choice")
    audio = _obj(s.get("audio", {}), "session.audio")
    _unknown(audio, {"input", "output"}, "session.audio")
    audio_in = _obj(audio.get("input", {}), "session.audio.input")
    audio_out = _obj(audio.get("output", {}), "session.audio.output")
    _unknown(audio_in, _INPUT_KEYS, "session.audio.input")
    _unknown(audio_out, _OUTPUT_KEYS, "session.audio.output")
    for where, part in (("input", audio_in), ("output", audio_out)):
        if "format" in part:
            _check_format(part["format"], f"session.audio.{where}.format")
    if "voice" in audio_out and audio_out["voice"] not in VOICES:
        raise Invalid("invalid_value", f"Invalid value: '{audio_out['voice']}'. Supported values are: "
                      f"{', '.join(sorted(VOICES))}.", "session.audio.output.voice")  # fmt: skip
    transcription = audio_in.get("transcription")
    if transcription is not None and not isinstance(_obj(transcription, "transcription").get("model"), str):
        raise Invalid("missing_required_parameter", "transcription.model is required.", "transcription.model")
    noise = audio_in.get("noise_reduction")
    if noise is not None and _obj(noise, "noise_reduction").get("type") not in ("near_field", "far_field"):
        raise Invalid(
            "invalid_value", "noise_reduction.type must be near_field or far_field.", "noise_reduction"
        )
    if "turn_detection" in audio_in:
        audio_in = {**audio_in, "turn_detection": _check_vad(audio_in["turn_detection"])}
    config.update({k: v for k, v in s.items() if k != "audio"})
    config["audio"]["input"].update(audio_in)
    config["audio"]["output"].update(audio_out)


def validate_item(item: object, items: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """A ``conversation.item.create`` item in GA shape; tool outputs must answer a known call."""
    it = _obj(item, "item")
    _unknown(it, _ITEM_KEYS, "item")
    kind = it.get("type")
    if kind == "message":
        role = it.get("role")
        if role not in _PART_TYPES:
            raise Invalid("invalid_value", f"Invalid role: {role!r}.", "item.role")
        content = it.get("content")
        if not isinstance(content, list) or not content:
            raise Invalid(
                "missing_required_parameter", "item.content must be a non-empty array.", "item.content"
            )
        for part in content:
            p = _obj(part, "item.content[]")
            if p.get("type") not in _PART_TYPES[role]:
                raise Invalid(
                    "invalid_value", f"Invalid content type {p.get('type')!r} for {role}.", "item.content"
                )
            key = "audio" if p["type"] == "input_audio" else "text"
            if not isinstance(p.get(key), str):
                raise Invalid("missing_required_parameter", f"content part needs '{key}'.", "item.content")
    elif kind == "function_call_output":
        call_id, output = it.get("call_id"), it.get("output")
        if not isinstance(output, str):
            raise Invalid("invalid_type", "item.output must be a string.", "item.output")
        known = {i.get("call_id") for i in items.values() if i.get("type") == "function_call"}
        if call_id not in known:
            raise Invalid("invalid_value", f"No tool call found with call_id '{call_id}'.", "item.call_id")
    elif kind != "function_call":
        raise Invalid("invalid_value", f"Invalid item type: {kind!r}.", "item.type")
    return it


def validate_response_options(options: object) -> dict[str, Any]:
    if options is None:
        return {}
    r = _obj(options, "response")
    _unknown(r, _RESPONSE_KEYS, "response")
    if "instructions" in r and not isinstance(r["instructions"], str):
        raise Invalid("invalid_type", "response.instructions must be a string.", "response.instructions")
    if r.get("tool_choice", "auto") not in ("auto", "none", "required") and not isinstance(
        r["tool_choice"], dict
    ):
        raise Invalid("invalid_value", "Invalid tool_choice.", "response.tool_choice")
    return r
