"""Fake LMNT HTTP TTS: ``POST /v1/ai/speech/bytes`` (protocols/tts.md §4.1).

Strict like the API: ``X-API-Key``, ``text`` (<= 5000 chars) and ``voice`` required, known fields, models,
formats, languages and sample rates only. It produces the three raw-ish formats with their documented
shapes: ``raw`` = little-endian float32 samples; ``ulaw`` = µ-law 8 kHz behind a WAV header (format tag 7,
with an extra ``LIST`` chunk so clients must walk chunks); ``wav`` = PCM16 in WAV. Compressed formats
(aac/mp3/webm) are refused as unsupported by the fake. Errors are JSON ``{"error": …}``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.openai_audio import ToneStreamFake, tone

FIELDS = {"text", "voice", "model", "language", "format", "sample_rate", "temperature", "top_p", "seed"}
MODELS = {"blizzard", "aurora"}
FORMATS = {"aac", "mp3", "raw", "ulaw", "wav", "webm"}
LANGUAGES = {
    "auto", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "th", "tr",
    "uk", "vi", "zh",
}  # fmt: skip
RATES = {8000, 16000, 24000}


def wav(payload: bytes, *, tag: int, rate: int, width: int) -> bytes:
    """A streaming-style WAV: fmt chunk, an extra LIST chunk, then data with a placeholder size."""
    fmt = struct.pack("<HHIIHH", tag, 1, rate, rate * width, width, width * 8)
    info = b"INFOISFT\x06\x00\x00\x00fake\x00\x00"
    header = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    header += b"LIST" + struct.pack("<I", len(info)) + info + b"data" + struct.pack("<I", 0xFFFFFFFF)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + header + payload


def lmnt_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@dataclass
class FakeLMNT(ToneStreamFake):
    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/ai/speech/bytes", self._bytes, methods=["POST"])])

    def _validate(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "body must be a JSON object"
        for key in body:
            if key not in FIELDS:
                return f"unknown field {key!r}"
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return "text is required"
        if len(text) > 5000:
            return "text must be at most 5000 characters"
        if not isinstance(body.get("voice"), str) or not body["voice"]:
            return "voice is required"
        if body.get("model", "blizzard") not in MODELS:
            return f"unknown model {body.get('model')!r}"
        if body.get("language", "auto") not in LANGUAGES:
            return f"unsupported language {body.get('language')!r}"
        fmt = body.get("format", "mp3")
        if fmt not in FORMATS:
            return f"unknown format {fmt!r}"
        if fmt not in {"raw", "ulaw", "wav"}:
            return f"fake serves raw, ulaw and wav only (got {fmt!r})"
        rate = body.get("sample_rate", 8000 if fmt == "ulaw" else 24000)
        if rate not in RATES:
            return f"sample_rate must be one of {sorted(RATES)}"
        if fmt == "ulaw" and rate != 8000:
            return "ulaw is 8000 Hz only"
        temperature = body.get("temperature", 1.0)
        if not isinstance(temperature, int | float) or temperature < 0:
            return "temperature must be >= 0"
        top_p = body.get("top_p", 0.8)
        if not isinstance(top_p, int | float) or not 0 <= top_p <= 1:
            return "top_p must be between 0 and 1"
        return None

    async def _bytes(self, request: Request) -> Response:
        rec = await self.record(request)
        if rec.headers.get("x-api-key") != self.api_key:
            return lmnt_error(401, "Invalid API key")
        if self.status is not None:
            return lmnt_error(self.status, f"fake fault {self.status}", headers=self.fault_headers())
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return lmnt_error(400, "Content-Type must be application/json")
        problem = self._validate(rec.body)
        if problem:
            return lmnt_error(400, problem)
        text: str = rec.body["text"]
        self.texts.append(text)
        fmt = rec.body.get("format", "mp3")
        rate = rec.body.get("sample_rate", 8000 if fmt == "ulaw" else 24000)
        ms = len(text) * self.ms_per_char
        if fmt == "raw":
            pcm = np.frombuffer(tone("pcm16", rate, ms), dtype="<i2")
            data = (pcm.astype("<f4") / 32768.0).astype("<f4").tobytes()
        elif fmt == "ulaw":
            data = wav(tone("mulaw", rate, ms), tag=7, rate=rate, width=1)
        else:
            data = wav(tone("pcm16", rate, ms), tag=1, rate=rate, width=2)
        return await self.stream(data, "application/octet-stream")
