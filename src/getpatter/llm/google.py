"""Google Gemini (Developer API) ``streamGenerateContent`` as a getpatter :class:`~getpatter.llm.base.LLM`.

Wire protocol: ``POST {base_url}/models/{model}:streamGenerateContent?alt=sse`` with ``x-goog-api-key``;
each SSE event is a whole ``GenerateContentResponse`` and the body simply ends (no ``[DONE]``); the
final chunk carries ``finishReason`` and the final ``usageMetadata``.

Conversion from getpatter's OpenAI-shaped history: ``system``/``developer`` -> ``systemInstruction``;
``assistant`` -> role ``model`` with ``text`` and ``functionCall`` parts (arguments parsed to an object);
``tool`` messages -> ``functionResponse`` parts in a ``user`` turn (the function name is looked up from
the assistant call it answers; a JSON-object result is sent as is, anything else wrapped as
``{"result": ...}`` because ``response`` must be an object). Same-role turns are merged and a history that
opens with the agent's greeting gets a short user turn in front.

Function calls arrive whole (not as argument fragments) and are yielded after the text as
:class:`ToolCallRequest`; Gemini's own call ``id`` is used when present (and echoed back), otherwise a
local id is generated (and not sent back). Thinking models attach a ``thoughtSignature`` to call parts that
must be returned verbatim in the next request: the instance remembers the last few hundred signatures by
call id, so the plain OpenAI-shaped history is enough to replay them.

Usage: ``promptTokenCount`` includes ``cachedContentTokenCount``; the cached part is reported as
``cache_read_tokens`` and excluded from ``input_tokens``. ``thoughtsTokenCount`` is billed as output and
is added to ``output_tokens``.
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import json
import logging
import os
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
)
from getpatter.llm._http import PooledHTTPClient, redact, status_error, transport_error
from getpatter.llm._sse import aiter_sse
from getpatter.llm.base import LLM as BaseLLM
from getpatter.llm.base import LLMEvent, Message, TextDelta, ToolCallRequest, ToolSchema, Usage

logger = logging.getLogger(__name__)

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
#: Sent when the history opens with the agent's greeting, so the first turn is the user's.
CALL_START_TEXT = "(The phone call has started.)"
LOCAL_ID_PREFIX = "call_local_"
_MAX_SIGNATURES = 512
_SCHEMA_DROP = frozenset({"$schema", "additionalProperties", "$id", "strict"})


#: An OAuth access token for Vertex AI, or a (sync or async) function returning a fresh one.
AccessToken = str | Callable[[], str | Awaitable[str]]


class GoogleLLM(PooledHTTPClient, BaseLLM):
    """Gemini, streamed. ``api_key`` falls back to ``GEMINI_API_KEY`` then ``GOOGLE_API_KEY``.

    ``vertexai=True`` sends the same request to Vertex AI instead:

    * with ``project`` (or ``GOOGLE_CLOUD_PROJECT``): ``{location}-aiplatform.googleapis.com/v1/projects/
      {project}/locations/{location}/publishers/google/models/{model}:streamGenerateContent`` with
      ``Authorization: Bearer`` and ``access_token`` (a token, or a function returning a fresh one, e.g. from
      google-auth: tokens expire after an hour). ``location`` falls back to ``GOOGLE_CLOUD_LOCATION`` then
      ``us-central1``; ``"global"`` uses ``aiplatform.googleapis.com``.
    * without a project: Vertex AI express mode, ``aiplatform.googleapis.com/v1/publishers/google/models/...``
      with the express-mode API key.
    """

    provider_id = "google"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "gemini-2.5-flash",
        *,
        temperature: float | None = None,
        max_output_tokens: int | None = None,
        base_url: str = GEMINI_BASE_URL,
        timeout: float = 30.0,
        vertexai: bool = False,
        project: str | None = None,
        location: str | None = None,
        access_token: AccessToken | None = None,
    ) -> None:
        self.vertexai = vertexai
        self.project = ""
        self.location = ""
        self._access_token = access_token
        if not vertexai and (project or location or access_token):
            raise PatterConfigError(
                "GoogleLLM: project=, location= and access_token= are Vertex AI settings. Fix: add "
                "vertexai=True, or drop them for the Gemini Developer API."
            )
        if vertexai:
            self.project = project or os.environ.get("GOOGLE_CLOUD_PROJECT", "")
            if self.project:
                self.location = location or os.environ.get("GOOGLE_CLOUD_LOCATION", "") or "us-central1"
                if access_token is None or not (callable(access_token) or access_token.strip()):
                    raise PatterConfigError(
                        "GoogleLLM(vertexai=True, project=...) needs access_token=: an OAuth access token, "
                        "or a function returning a fresh one (e.g. from google-auth). Or use Vertex AI "
                        "express mode: vertexai=True with an express API key and no project."
                    )
            elif location or access_token:
                raise PatterConfigError(
                    "GoogleLLM: location= and access_token= need project= (or GOOGLE_CLOUD_PROJECT); "
                    "Vertex AI express mode (no project) takes an API key only."
                )
            if base_url == GEMINI_BASE_URL:
                host = "aiplatform.googleapis.com"
                if self.location and self.location != "global":
                    host = f"{self.location}-{host}"
                base_url = f"https://{host}/v1"
        key = api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or ""
        if not key and not self.project:
            raise PatterConfigError(
                "GoogleLLM needs an API key: pass api_key=... or set the GEMINI_API_KEY (or GOOGLE_API_KEY) "
                "environment variable."
            )
        if not model:
            raise PatterConfigError("GoogleLLM needs model=... (e.g. 'gemini-2.5-flash').")
        if timeout <= 0:
            raise PatterConfigError(f"GoogleLLM: timeout must be > 0 seconds, got {timeout!r}.")
        self._api_key = key
        self.model = model.removeprefix("models/")
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._signatures: collections.OrderedDict[str, str] = collections.OrderedDict()

    def __repr__(self) -> str:
        vertex = (
            f", vertexai=True, project={self.project!r}, location={self.location!r}" if self.vertexai else ""
        )
        return f"GoogleLLM(model={self.model!r}, base_url={self.base_url!r}{vertex})"

    @property
    def url(self) -> str:
        if self.project:
            path = f"projects/{self.project}/locations/{self.location}/publishers/google/models"
        elif self.vertexai:
            path = "publishers/google/models"
        else:
            path = "models"
        return f"{self.base_url}/{path}/{self.model}:streamGenerateContent?alt=sse"

    async def _auth(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """Request headers and the secrets to keep out of error messages."""
        token = self._access_token
        if not self.project or token is None:
            return {"x-goog-api-key": self._api_key}, (self._api_key,)
        if callable(token):
            fresh = token()
            token = await fresh if inspect.isawaitable(fresh) else fresh
        if not isinstance(token, str) or not token.strip():
            raise AuthenticationError("GoogleLLM: access_token() returned no token")
        return {"authorization": f"Bearer {token}"}, (token,)

    def build_request(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> dict[str, Any]:
        """The ``GenerateContentRequest`` JSON for one streamed turn (see the module docstring)."""
        system, contents = convert_messages(messages, self._signatures)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [convert_tool(t) for t in tools]}]
        config: dict[str, Any] = {}
        if self.temperature is not None:
            config["temperature"] = self.temperature
        if self.max_output_tokens is not None:
            config["maxOutputTokens"] = self.max_output_tokens
        if config:
            body["generationConfig"] = config
        return body

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> AsyncGenerator[LLMEvent, None]:
        body = json.dumps(self.build_request(messages, tools), ensure_ascii=False).encode("utf-8")
        auth, secrets = await self._auth()
        headers = {**auth, "content-type": "application/json"}
        calls: list[ToolCallRequest] = []
        usage: Mapping[str, Any] = {}
        finished = False
        try:
            async with self._http().stream("POST", self.url, content=body, headers=headers) as response:
                if not response.is_success:
                    raise _status_error(response, await response.aread(), secrets)
                async with contextlib.aclosing(aiter_sse(response.aiter_bytes())) as events:
                    async for sse in events:
                        doc = _decode(sse.data)
                        if isinstance(doc.get("error"), dict):
                            raise _body_error(doc["error"], secrets)
                        if isinstance(doc.get("usageMetadata"), dict):
                            usage = doc["usageMetadata"]
                        candidates = doc.get("candidates")
                        if not candidates:
                            block = (doc.get("promptFeedback") or {}).get("blockReason")
                            if block:
                                raise PatterError(f"google blocked the prompt ({block})")
                            continue
                        candidate = candidates[0] if isinstance(candidates[0], dict) else {}
                        for part in (candidate.get("content") or {}).get("parts") or ():
                            if not isinstance(part, dict) or part.get("thought"):
                                continue
                            if isinstance(part.get("text"), str) and part["text"]:
                                yield TextDelta(part["text"])
                            elif isinstance(part.get("functionCall"), dict):
                                calls.append(self._tool_call(part))
                        reason = candidate.get("finishReason")
                        if reason:
                            finished = True
                            if reason not in ("STOP", "MAX_TOKENS"):
                                logger.warning("google: generation finished with %s", reason)
        except httpx.HTTPError as exc:
            raise transport_error(self.provider_id, exc, secrets=secrets) from exc
        if not finished:
            raise PatterConnectionError("google stream ended before the final chunk (no finishReason)")
        for call in calls:
            yield call
        yield _usage(usage)

    def _tool_call(self, part: Mapping[str, Any]) -> ToolCallRequest:
        call = part["functionCall"]
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        call_id = call_id or f"{LOCAL_ID_PREFIX}{uuid.uuid4().hex[:20]}"
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature:
            self._signatures[call_id] = signature
            while len(self._signatures) > _MAX_SIGNATURES:
                self._signatures.popitem(last=False)
        args = call.get("args")
        return ToolCallRequest(
            call_id, str(call.get("name", "")), json.dumps(args if isinstance(args, dict) else {})
        )


def _decode(data: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError:
        logger.warning("google: skipping a malformed stream event (%d bytes)", len(data))
        return {}
    return doc if isinstance(doc, dict) else {}


def _usage(meta: Mapping[str, Any]) -> Usage:
    def _int(key: str) -> int:
        value = meta.get(key)
        return value if isinstance(value, int) and value > 0 else 0

    prompt, cached = _int("promptTokenCount"), _int("cachedContentTokenCount")
    return Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=_int("candidatesTokenCount") + _int("thoughtsTokenCount"),
        cache_read_tokens=min(cached, prompt) if prompt else cached,
    )


def _status_error(response: httpx.Response, raw: bytes, secrets: Sequence[str]) -> PatterError:
    # Gemini answers an invalid key with 400 INVALID_ARGUMENT (reason API_KEY_INVALID), not 401.
    text = raw.decode("utf-8", errors="replace")
    if response.status_code == 400 and ("API_KEY_INVALID" in text or "API key not valid" in text):
        return AuthenticationError("google rejected the API key (HTTP 400 API_KEY_INVALID)")
    return status_error("google", response.status_code, response.headers, raw, secrets=secrets)


def _body_error(error: Mapping[str, Any], secrets: Sequence[str]) -> PatterError:
    code = error.get("code")
    message = "google stream error: " + redact(str(error.get("message", "")), secrets)
    if isinstance(code, int) and (code >= 500 or code == 429):
        return PatterConnectionError(message)
    return PatterError(message, code=ErrorCode.PROVIDER_ERROR)


# ---------------------------------------------------------------------------------------------- conversion
def convert_tool(tool: ToolSchema) -> dict[str, Any]:
    """A getpatter/OpenAI tool schema -> a Gemini ``functionDeclaration``.

    JSON-Schema keywords Gemini's OpenAPI subset rejects are dropped, and an object schema without
    properties is omitted entirely (Gemini refuses an OBJECT with empty ``properties``).
    """
    spec = tool.get("function") if tool.get("type") == "function" else tool
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise PatterConfigError(f"tool schema needs a non-empty 'name', got keys {sorted(tool)}")
    out: dict[str, Any] = {"name": spec["name"], "description": spec.get("description") or ""}
    params = spec.get("parameters")
    if isinstance(params, dict) and params.get("properties"):
        out["parameters"] = clean_schema(params)
    return out


def clean_schema(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_DROP:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [clean_schema(sub) for sub in value]
        elif key == "items":
            out[key] = clean_schema(value)
        else:
            out[key] = value
    return out


def convert_messages(
    messages: Sequence[Message], signatures: Mapping[str, str] | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """OpenAI chat history -> (system texts, Gemini ``contents`` with merged same-role turns)."""
    signatures = signatures or {}
    names: dict[str, str] = {}
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = _text(message.get("content"))
            if text:
                system.append(text)
            continue
        if role == "assistant":
            turn, parts = "model", _model_parts(message, signatures, names)
        elif role == "tool":
            turn, parts = "user", [_function_response(message, names)]
        elif role == "user":
            turn, parts = "user", _user_parts(message.get("content"))
        else:
            raise PatterConfigError(f"GoogleLLM: unsupported message role {role!r}")
        if not parts:
            continue
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn, "parts": parts})
    if contents and contents[0]["role"] == "model":
        contents.insert(0, {"role": "user", "parts": [{"text": CALL_START_TEXT}]})
    return system, contents


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
                mime, data = url[5:].split(";base64,", 1)
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
    return parts


def _model_parts(
    message: Message, signatures: Mapping[str, str], names: dict[str, str]
) -> list[dict[str, Any]]:
    text = _text(message.get("content"))
    parts: list[dict[str, Any]] = [{"text": text}] if text.strip() else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        call_id, name = str(call.get("id", "")), str(function.get("name", ""))
        names[call_id] = name
        raw = function.get("arguments") or "{}"
        try:
            args = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            args = None
        payload: dict[str, Any] = {"name": name, "args": args if isinstance(args, dict) else {}}
        if call_id and not call_id.startswith(LOCAL_ID_PREFIX):
            payload["id"] = call_id
        part: dict[str, Any] = {"functionCall": payload}
        if call_id in signatures:
            part["thoughtSignature"] = signatures[call_id]
        parts.append(part)
    return parts


def _function_response(message: Message, names: Mapping[str, str]) -> dict[str, Any]:
    call_id = str(message.get("tool_call_id", ""))
    content = message.get("content")
    text = content if isinstance(content, str) else _text(content)
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    payload: dict[str, Any] = {
        "name": names.get(call_id, ""),
        "response": parsed if isinstance(parsed, dict) else {"result": parsed},
    }
    if call_id and not call_id.startswith(LOCAL_ID_PREFIX):
        payload["id"] = call_id
    return {"functionResponse": payload}


LLM = GoogleLLM

__all__ = ["GEMINI_BASE_URL", "LLM", "GoogleLLM", "clean_schema", "convert_messages", "convert_tool"]
