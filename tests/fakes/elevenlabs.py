"""Fake ElevenLabs HTTP streaming TTS: ``POST /v1/text-to-speech/{voice_id}/stream`` (protocols/tts.md §1.1).

Strict like the real API: ``xi-api-key`` header, voice ids of the real shape (20 alphanumerics, so an
unresolved name such as ``"rachel"`` is a 404), ``output_format`` only in the query string and from the
documented list, body fields limited to the documented ones (``text`` required), ``voice_settings`` keys and
ranges, ``optimize_streaming_latency`` 0-4. It produces raw formats only (``pcm_*``, ``ulaw_8000``,
``alaw_8000``; µ-law/A-law via stdlib audioop) and refuses mp3/opus or an omitted format (whose default
is mp3), so clients must ask for playable audio explicitly.

Same tone and fault knobs as :class:`tests.fakes.openai_audio.ToneStreamFake`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.openai_audio import ToneStreamFake, tone

RAW_FORMATS: dict[str, tuple[str, int, str]] = {
    **{
        f"pcm_{rate}": ("pcm16", rate, "audio/pcm")
        for rate in (8000, 16000, 22050, 24000, 32000, 44100, 48000)
    },
    "ulaw_8000": ("mulaw", 8000, "audio/basic"),
    "alaw_8000": ("alaw", 8000, "audio/x-alaw-basic"),
}
ENCODED_FORMATS = frozenset(
    ["mp3_22050_32", "mp3_24000_48"]
    + [f"mp3_44100_{b}" for b in (32, 64, 96, 128, 192)]
    + [f"opus_48000_{b}" for b in (32, 64, 96, 128, 192)]
)
MODELS = frozenset(
    {"eleven_flash_v2_5", "eleven_turbo_v2_5", "eleven_multilingual_v2", "eleven_v3", "eleven_monolingual_v1"}
)
BODY_FIELDS = frozenset(
    {
        "text",
        "model_id",
        "voice_settings",
        "language_code",
        "apply_text_normalization",
        "previous_text",
        "next_text",
        "seed",
        "pronunciation_dictionary_locators",
        "previous_request_ids",
        "next_request_ids",
    }
)
SETTING_RANGES: dict[str, tuple[float, float]] = {
    "stability": (0.0, 1.0),
    "similarity_boost": (0.0, 1.0),
    "style": (0.0, 1.0),
    "speed": (0.7, 1.2),
}
VOICE_ID = re.compile(r"^[A-Za-z0-9]{20}$")


def detail(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": {"status": code, "message": message}}, status_code=status, headers=headers)


def validation_error(loc: list[str | int], msg: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}, status_code=422)


def _check_settings(settings: Any) -> str | None:
    if not isinstance(settings, dict):
        return "voice_settings must be an object"
    for key, value in settings.items():
        if key == "use_speaker_boost":
            if not isinstance(value, bool):
                return "use_speaker_boost must be a boolean"
        elif key in SETTING_RANGES:
            lo, hi = SETTING_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                return f"{key} must be between {lo} and {hi}"
        else:
            return f"unknown voice setting {key!r}"
    return None


@dataclass
class FakeElevenLabs(ToneStreamFake):
    """Serves ``POST /v1/text-to-speech/{voice_id}/stream``; ``.app`` is the ASGI app."""

    api_key: str = "el-test"

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v1/text-to-speech/{voice_id}/stream", self._stream_endpoint, methods=["POST"])]
        )

    def _fault(self) -> Response:
        code = {401: "invalid_api_key", 429: "too_many_concurrent_requests", 500: "internal_server_error"}
        return detail(
            self.status or 500,
            code.get(self.status or 500, "error"),
            f"fake fault {self.status}",
            headers=self.fault_headers(),
        )

    def _check_query(self, query: dict[str, str]) -> Response | None:
        fmt = query.get("output_format")
        if fmt is None or fmt in ENCODED_FORMATS:
            return detail(400, "unsupported_by_fake", "fake serves raw pcm_*/ulaw_8000/alaw_8000 only")
        if fmt not in RAW_FORMATS:
            return validation_error(["query", "output_format"], f"invalid output_format {fmt!r}")
        latency = query.get("optimize_streaming_latency")
        if latency is not None and latency not in {"0", "1", "2", "3", "4"}:
            return validation_error(["query", "optimize_streaming_latency"], "must be an integer 0-4")
        logging = query.get("enable_logging")
        if logging is not None and logging not in {"true", "false"}:
            return validation_error(["query", "enable_logging"], "must be a boolean")
        return None

    def _check_body(self, body: Any) -> Response | None:
        if not isinstance(body, dict):
            return validation_error(["body"], "body must be a JSON object")
        for key in body:
            if key not in BODY_FIELDS:
                return validation_error(["body", key], "extra fields not permitted")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return validation_error(["body", "text"], "field required")
        model = body.get("model_id", "eleven_multilingual_v2")
        if model not in MODELS:
            return detail(400, "model_not_found", f"A model with model ID {model!r} does not exist.")
        if "voice_settings" in body and (problem := _check_settings(body["voice_settings"])):
            return validation_error(["body", "voice_settings"], problem)
        lang = body.get("language_code")
        if lang is not None and (not isinstance(lang, str) or not re.fullmatch(r"[a-z]{2,3}", lang)):
            return validation_error(["body", "language_code"], "invalid language code")
        return None

    async def _stream_endpoint(self, request: Request) -> Response:
        rec = await self.record(request)
        if rec.headers.get("xi-api-key") != self.api_key:
            return detail(401, "invalid_api_key", "Invalid API key")
        if self.status is not None:
            return self._fault()
        voice_id = request.path_params["voice_id"]
        if not VOICE_ID.match(voice_id):
            return detail(404, "voice_not_found", f"A voice with voice_id {voice_id!r} was not found.")
        problem = self._check_query(rec.query)
        if problem is not None:
            return problem
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return validation_error(["body"], "expected application/json")
        problem = self._check_body(rec.body)
        if problem is not None:
            return problem
        text: str = rec.body["text"]
        self.texts.append(text)
        encoding, rate, media_type = RAW_FORMATS[rec.query["output_format"]]
        width = 2 if encoding == "pcm16" else 1
        audio = tone(encoding, rate, len(text) * self.ms_per_char)
        return await self.stream(audio, media_type, bytes_per_ms=rate * width / 1000.0)
