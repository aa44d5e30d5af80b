"""Fake Rime HTTP TTS: ``POST /v1/rime-tts`` (protocols/tts.md §3.1).

Strict like the API: ``Authorization: Bearer``, ``Accept`` picks the format (the fake produces
``audio/pcm`` and ``audio/x-mulaw`` at 8 kHz; other documented types are refused as unsupported by the fake,
unknown ones 400), camelCase body with ``speaker``/``text``/``modelId`` required, known models only,
options only for their model family, ``samplingRate`` from the documented list, mist texts <= 500 chars.
Errors are JSON ``{"message": …}``. Tone and fault knobs from :class:`ToneStreamFake`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.openai_audio import ToneStreamFake, tone

MODELS = {"arcana", "mistv2", "mistv3", "mist", "coda"}
COMMON = {"speaker", "text", "modelId", "samplingRate", "lang"}
ARCANA_OPTS = {"temperature", "top_p", "max_tokens", "repetition_penalty"}
MIST_OPTS = {"speedAlpha", "reduceLatency", "pauseBetweenBrackets", "phonemizeBetweenBrackets"}
SERVED = {"audio/pcm": "pcm16", "audio/x-mulaw": "mulaw"}
DOCUMENTED = {"audio/wav", "audio/mp3", "audio/mpeg", "audio/webm;codecs=opus", "audio/ogg;codecs=opus"}
RATES = {8000, 16000, 22050, 24000, 44100, 48000}
LANGS = {"eng", "en", "spa", "es", "fra", "fr", "ger", "de", "hin", "hi"}


def rime_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status, headers=headers)


@dataclass
class FakeRime(ToneStreamFake):
    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/rime-tts", self._tts, methods=["POST"])])

    def _validate(self, body: Any, accept: str) -> str | None:
        if not isinstance(body, dict):
            return "body must be a JSON object"
        for key in ("speaker", "text", "modelId"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                return f"{key} is required"
        model = body["modelId"]
        if model not in MODELS:
            return f"unknown modelId {model!r}"
        allowed = COMMON | (MIST_OPTS if model.startswith("mist") else ARCANA_OPTS)
        for key in body:
            if key not in allowed:
                return f"unexpected field {key!r} for model {model}"
        rate = body.get("samplingRate", 24000)
        if rate not in RATES:
            return f"samplingRate {rate!r} is not supported"
        if accept == "audio/x-mulaw" and rate != 8000:
            return "audio/x-mulaw needs samplingRate 8000"
        if body.get("lang", "eng") not in LANGS:
            return f"unsupported lang {body.get('lang')!r}"
        if model.startswith("mist") and len(body["text"]) > 500:
            return "text is longer than 500 characters"
        return None

    async def _tts(self, request: Request) -> Response:
        rec = await self.record(request)
        if rec.headers.get("authorization") != f"Bearer {self.api_key}":
            return rime_error(401, "Invalid API key.")
        if self.status is not None:
            return rime_error(self.status, f"fake fault {self.status}", headers=self.fault_headers())
        accept = rec.headers.get("accept", "").replace(" ", "")
        if accept in DOCUMENTED:
            return rime_error(400, f"fake serves audio/pcm and audio/x-mulaw only (got {accept})")
        if accept not in SERVED:
            return rime_error(400, f"unsupported Accept {accept!r}")
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return rime_error(400, "Content-Type must be application/json")
        problem = self._validate(rec.body, accept)
        if problem:
            return rime_error(400, problem)
        text: str = rec.body["text"]
        self.texts.append(text)
        rate = rec.body.get("samplingRate", 24000)
        return await self.stream(tone(SERVED[accept], rate, len(text) * self.ms_per_char), accept)
