"""A strict fake of Gemini's ``models/{model}:streamGenerateContent?alt=sse`` (Developer API, v1beta).

Strict means Google's answers to bad requests: a missing key (403 ``PERMISSION_DENIED``), a wrong key
(400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` — Gemini does not use 401), unknown fields
(``Unknown name "x": Cannot find field``), roles other than ``user``/``model``/``function``, empty parts,
a part with no or two data fields, a ``functionResponse`` whose ``response`` is not an object, function
responses that do not match (count and names) the function calls of the model turn right before them, a
function-call turn that does not follow a user or function-response turn, an OBJECT schema with empty
``properties``, ``$schema``/``additionalProperties`` in declarations, and a function call that comes back
without the ``thoughtSignature`` this fake attached to it. The fake also insists on ``alt=sse`` (without
it the real endpoint streams a JSON array, which no client here should ask for).

Streams: one SSE event per ``GenerateContentResponse``; text in several chunks, then a final chunk with
``finishReason`` and the full ``usageMetadata``; tool turns send the complete ``functionCall`` parts in one
chunk. No ``[DONE]``: the body just ends.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.anthropic import DroppingStream, StreamRecorder

_TOP_LEVEL = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings",
              "cachedContent"}  # fmt: skip
_GEN_CONFIG = {"temperature", "maxOutputTokens", "topP", "topK", "candidateCount", "stopSequences",
               "responseMimeType", "responseSchema", "thinkingConfig", "seed"}  # fmt: skip
_DATA_FIELDS = {"text", "inlineData", "fileData", "functionCall", "functionResponse"}
_PART_EXTRA = {"thought", "thoughtSignature"}
_FN_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$")
_UNREGISTERED = (
    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key "
    "or other form of API consumer identity."
)
_STATUS = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``tool_calls`` are ``(name, args)``; ``usage`` is ``(prompt, candidates)``.

    ``with_ids`` gives the function calls Gemini-side ids; ``status`` answers that HTTP error instead;
    ``drop_mid_stream`` cuts the connection after half the chunks.
    """

    text: str = ""
    tool_calls: Sequence[tuple[str, dict[str, Any]]] = ()
    usage: tuple[int, int] = (12, 6)
    cached: int = 0
    thoughts: int = 0
    with_ids: bool = False
    status: int | None = None
    drop_mid_stream: bool = False
    chunk_delay_s: float = 0.0


class BadRequest(Exception):
    pass


def google_error(code: int, message: str, reason: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": _STATUS.get(code, "UNKNOWN")}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com"}]  # fmt: skip
    return {"error": error}


class FakeGemini:
    def __init__(
        self, api_key: str = "AIza-test", replies: Sequence[Reply | str] = (), access_token: str = "ya29.test"
    ) -> None:
        self.api_key = api_key
        #: Vertex AI: the OAuth token ``/v1/projects/...`` requests must carry as ``Authorization: Bearer``.
        self.access_token = access_token
        self.paths: list[str] = []
        self._queue: list[Reply | str] = list(replies)
        self.requests: list[dict[str, Any]] = []
        self.models: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.rejected: list[tuple[int, str]] = []
        self.streams = StreamRecorder()
        self.signatures: dict[str, str] = {}  # thoughtSignature -> function name it was issued with
        self._ids = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v1beta/models/{target}", self._handle, methods=["POST"]),
                # Vertex AI: the same GenerateContent wire on other paths (express mode takes the API key).
                Route(
                    "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}",
                    self._handle,
                    methods=["POST"],
                ),
                Route("/v1/publishers/google/models/{target}", self._handle, methods=["POST"]),
            ]
        )

    def last_request(self) -> dict[str, Any]:
        return self.requests[-1]

    async def _handle(self, request: Request) -> Response:
        if "project" in request.path_params:
            if request.headers.get("authorization") != f"Bearer {self.access_token}":
                return self._reject(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")
        else:
            key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
            if not key:
                return self._reject(403, _UNREGISTERED)
            if key != self.api_key:
                return self._reject(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
        self.paths.append(request.url.path)
        model, _, action = request.path_params["target"].rpartition(":")
        if action != "streamGenerateContent" or not model:
            return self._reject(404, f"Method not found: {action}")
        if request.query_params.get("alt") != "sse":
            return self._reject(400, "this fake only serves alt=sse")
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise BadRequest("Invalid JSON payload received. Expected an object.")
            self._validate(body)
        except ValueError:
            return self._reject(400, "Invalid JSON payload received.")
        except BadRequest as exc:
            return self._reject(400, str(exc))
        self.requests.append(body)
        self.models.append(model)
        self.headers.append(dict(request.headers))
        item = self._queue.pop(0) if self._queue else "OK."
        reply = Reply(text=item) if isinstance(item, str) else item
        if reply.status is not None:
            return JSONResponse(google_error(reply.status, "fake failure"), status_code=reply.status)
        events = self._events(model, reply)
        if reply.drop_mid_stream:
            return DroppingStream(events)
        return StreamingResponse(
            self.streams.body(events, reply.chunk_delay_s), media_type="text/event-stream"
        )

    def _reject(self, status: int, message: str, reason: str | None = None) -> JSONResponse:
        self.rejected.append((status, message))
        return JSONResponse(google_error(status, message, reason), status_code=status)

    def _events(self, model: str, reply: Reply) -> list[str]:
        n = next(self._ids)
        prompt, output = reply.usage
        out: list[str] = []

        def emit(parts: list[dict[str, Any]], final: bool) -> None:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            usage: dict[str, Any] = {"promptTokenCount": prompt}
            if final:
                candidate["finishReason"] = "STOP"
                usage |= {"candidatesTokenCount": output, "totalTokenCount": prompt + output + reply.thoughts}
                if reply.cached:
                    usage["cachedContentTokenCount"] = reply.cached
                if reply.thoughts:
                    usage["thoughtsTokenCount"] = reply.thoughts
            doc = {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": f"r{n}",
            }
            out.append(f"data: {json.dumps(doc)}\r\n\r\n")

        pieces = [reply.text[i : i + 6] for i in range(0, len(reply.text), 6)]
        for piece in pieces[:-1] if not reply.tool_calls else pieces:
            emit([{"text": piece}], final=False)
        if reply.tool_calls:
            parts = []
            for j, (name, args) in enumerate(reply.tool_calls):
                signature = f"sig-{n}-{j}"
                self.signatures[signature] = name
                call: dict[str, Any] = {"name": name, "args": args}
                if reply.with_ids:
                    call["id"] = f"gc-{n}-{j}"
                parts.append({"functionCall": call, "thoughtSignature": signature})
            emit(parts, final=True)
        else:
            emit([{"text": pieces[-1] if pieces else ""}], final=True)
        return out

    # ------------------------------------------------------------------------------------------ validation
    def _validate(self, body: dict[str, Any]) -> None:
        for key in body:
            if key not in _TOP_LEVEL:
                raise BadRequest(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
        for key in body.get("generationConfig") or {}:
            if key not in _GEN_CONFIG:
                raise BadRequest(
                    f"Invalid JSON payload received. Unknown name \"{key}\" at 'generation_config'."
                )
        system = body.get("systemInstruction")
        if system is not None:
            parts = system.get("parts") if isinstance(system, dict) else None
            if (
                not isinstance(parts, list)
                or not parts
                or not all(isinstance(p.get("text"), str) for p in parts)
            ):
                raise BadRequest("systemInstruction must have text parts")
        for i, tool in enumerate(body.get("tools") or ()):
            for j, decl in enumerate(tool.get("functionDeclarations") or ()):
                _validate_declaration(decl, f"tools[{i}].function_declarations[{j}]")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        previous_calls: list[str] = []
        previous_kind = ""
        for i, content in enumerate(contents):
            where = f"contents[{i}]"
            role = content.get("role") if isinstance(content, dict) else None
            if role not in ("user", "model", "function"):
                raise BadRequest(f"Please use a valid role: user, model. ({where}.role={role!r})")
            if i == 0 and role != "user":
                raise BadRequest("Please ensure that the first content has role 'user'.")
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                raise BadRequest(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.")
            calls, responses, texts = [], [], 0
            for j, part in enumerate(parts):
                data = [k for k in part if k in _DATA_FIELDS] if isinstance(part, dict) else []
                extra = (
                    [k for k in part if k not in _DATA_FIELDS | _PART_EXTRA] if isinstance(part, dict) else []
                )
                if len(data) != 1 or extra:
                    raise BadRequest(
                        f"{where}.parts[{j}]: a part must have exactly one data field; got {list(part)}"
                    )
                if "functionCall" in part:
                    calls.append(self._check_call(part, role, f"{where}.parts[{j}]"))
                elif "functionResponse" in part:
                    response = part["functionResponse"]
                    if role == "model" or not isinstance(response.get("response"), dict):
                        raise BadRequest(f"{where}.parts[{j}].function_response.response must be an object")
                    responses.append(response.get("name"))
                else:
                    texts += 1
            if responses and (previous_kind != "calls" or sorted(responses) != sorted(previous_calls)):
                raise BadRequest(
                    "Please ensure that the number of function response parts is equal to the number of "
                    "function call parts of the function call turn."
                )
            if previous_kind == "calls" and not responses:
                raise BadRequest(
                    "Please ensure that function response turn comes immediately after a function call turn."
                )
            if calls and previous_kind not in ("user", "responses"):
                raise BadRequest(
                    "Please ensure that function call turn comes immediately after a user turn or after a "
                    "function response turn."
                )
            previous_calls = calls
            previous_kind = (
                "calls" if calls else "responses" if responses else ("user" if role == "user" else "model")
            )

    def _check_call(self, part: dict[str, Any], role: str, where: str) -> str:
        call = part["functionCall"]
        if role != "model":
            raise BadRequest(f"{where}: function calls may only appear in model turns")
        if not isinstance(call.get("name"), str) or not isinstance(call.get("args", {}), dict):
            raise BadRequest(f"{where}.function_call: name and object args required")
        signature = part.get("thoughtSignature")
        issued = [s for s, name in self.signatures.items() if name == call["name"]]
        if issued and signature not in issued:
            raise BadRequest(f"Function call is missing a thought_signature in functionCall parts ({where}).")
        return str(call["name"])


def _validate_declaration(decl: Any, where: str) -> None:
    if not isinstance(decl, dict) or not _FN_NAME.match(str(decl.get("name", ""))):
        raise BadRequest(f"* GenerateContentRequest.{where}.name: Invalid function name.")
    if "parameters" in decl:
        _validate_schema(decl["parameters"], f"{where}.parameters")


def _validate_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        raise BadRequest(f"{where}: schema must be an object")
    for bad in ("$schema", "additionalProperties"):
        if bad in schema:
            raise BadRequest(
                f"Invalid JSON payload received. Unknown name \"{bad}\" at '{where}': Cannot find field."
            )
    if str(schema.get("type", "")).lower() == "object":
        properties = schema.get("properties")
        if not properties:
            raise BadRequest(
                f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type"
            )
        for name, sub in properties.items():
            _validate_schema(sub, f"{where}.properties[{name}]")
    if "items" in schema:
        _validate_schema(schema["items"], f"{where}.items")
