"""A strict fake of OpenAI ``POST /v1/audio/transcriptions`` (protocols/openai-rest.md section 4).

Strict where the real API is: ``Authorization: Bearer``, ``multipart/form-data`` with a boundary (parsed
by hand, byte-exact, so a malformed body is refused), a ``file`` part with a filename holding a real WAV,
a known ``model``, ISO-639-1 ``language``, ``response_format`` valid for the model (gpt-4o-* only
``json``/``text``), <= 25 MB, no unknown fields. Every voiced segment of the WAV (stdlib ``audioop``
energy segmentation) becomes the next scripted utterance; audio with no segment answers ``silence_text``
(default "Thank you.", the classic Whisper hallucination). Fault knobs: ``status`` (+``retry_after``),
``drop`` (abort the connection mid-body), ``delay_s`` (think this long before answering).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes._segmenter import Segmenter, wav_pcm16

MODELS = {"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-large-v3-turbo"}
FORMATS = {"json", "text", "srt", "verbose_json", "vtt"}
KNOWN_FIELDS = {
    "file", "model", "language", "prompt", "response_format", "temperature",
    "timestamp_granularities[]", "stream", "include[]",
}  # fmt: skip
MAX_FILE = 25 * 1024 * 1024
_DISPOSITION = re.compile(r'form-data; name="([^"]+)"(?:; filename="([^"]*)")?$')


class BadRequest(Exception):
    pass


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Upload:
    """One recorded request: headers, every part in order, and the decoded audio."""

    headers: dict[str, str]
    parts: list[Part]
    sample_rate: int = 0
    pcm: bytes = b""

    @property
    def fields(self) -> dict[str, str]:
        return {p.name: p.data.decode() for p in self.parts if p.filename is None}

    @property
    def file(self) -> Part:
        return next(p for p in self.parts if p.name == "file")

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.sample_rate) if self.sample_rate else 0.0


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """RFC 7578 parsing, strict: CRLF delimiters, a closing boundary, form-data dispositions."""
    match = re.fullmatch(r'multipart/form-data; boundary="?([^";]+)"?', content_type.strip())
    if match is None:
        raise BadRequest("Content-Type must be multipart/form-data with a boundary.")
    delimiter = b"--" + match.group(1).encode()
    if not body.startswith(delimiter + b"\r\n") or not body.rstrip(b"\r\n").endswith(delimiter + b"--"):
        raise BadRequest("Malformed multipart body (boundaries).")
    chunks = body.rstrip(b"\r\n")[: -len(delimiter) - 2].split(b"\r\n" + delimiter)
    parts: list[Part] = []
    for chunk in chunks:
        chunk = chunk[len(delimiter) :] if chunk.startswith(delimiter) else chunk
        if not chunk.startswith(b"\r\n") or b"\r\n\r\n" not in chunk:
            raise BadRequest("Malformed multipart part.")
        head, data = chunk[2:].split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disp = _DISPOSITION.match(headers.get("content-disposition", ""))
        if disp is None:
            raise BadRequest("Each part needs Content-Disposition: form-data; name=...")
        parts.append(Part(disp.group(1), disp.group(2), headers.get("content-type"), data))
    return parts


class FakeOpenAITranscribe:
    """``FakeOpenAITranscribe(api_key, utterances)``; serve ``.app`` with ``tests.fakes.server.running``."""

    def __init__(
        self,
        api_key: str = "sk-test",
        utterances: Iterable[str] = (),
        *,
        silence_text: str = "Thank you.",
        status: int | None = None,
        retry_after: str | None = None,
        drop: bool = False,
        rms_threshold: float = 500.0,
        delay_s: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.utterances = list(utterances)
        self.silence_text = silence_text
        self.status = status
        self.retry_after = retry_after
        self.drop = drop
        self.rms_threshold = rms_threshold
        self.delay_s = delay_s
        self.uploads: list[Upload] = []
        self.refusals: list[tuple[int, str]] = []
        self._script = itertools.count()
        self.app = Starlette(routes=[Route("/v1/audio/transcriptions", self._transcribe, methods=["POST"])])

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
        self.refusals.append((status, message))
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        return JSONResponse(body, status_code=status, headers=headers)

    async def _transcribe(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_request_error")
        if self.status is not None:
            extra = {"retry-after": self.retry_after} if self.retry_after is not None else {}
            return self._error(self.status, "Injected failure.", "server_error", extra)
        try:
            upload = self._check(dict(request.headers), await request.body())
        except BadRequest as exc:
            return self._error(400, str(exc), "invalid_request_error")
        self.uploads.append(upload)
        text = self._recognise(upload)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        fields = upload.fields
        fmt = fields.get("response_format", "json")
        if self.drop:
            return StreamingResponse(self._dropped(), media_type="application/json")
        if fmt == "text":
            return PlainTextResponse(text + "\n")
        if fmt == "verbose_json":
            doc: dict[str, Any] = {
                "task": "transcribe",
                "language": "english",
                "duration": upload.seconds,
                "text": text,
                "segments": [],
            }
        elif fields["model"].startswith("gpt-4o"):
            tokens = max(1, len(text.split()))
            usage = {
                "type": "tokens",
                "input_tokens": 50,
                "output_tokens": tokens,
                "total_tokens": 50 + tokens,
            }
            doc = {"text": text, "usage": usage}
        else:
            doc = {"text": text, "usage": {"type": "duration", "seconds": round(upload.seconds)}}
        return Response(orjson.dumps(doc), media_type="application/json")

    async def _dropped(self) -> AsyncIterator[bytes]:
        yield b'{"text": "'
        raise ConnectionAbortedError("fake: dropping the connection mid-body")

    def _check(self, headers: dict[str, str], body: bytes) -> Upload:
        parts = parse_multipart(headers.get("content-type", ""), body)
        names = [p.name for p in parts]
        for name in names:
            if name not in KNOWN_FIELDS:
                raise BadRequest(f"Unrecognized request argument supplied: {name}")
            if not name.endswith("[]") and names.count(name) > 1:
                raise BadRequest(f"Duplicate field {name}.")
        upload = Upload(headers, parts)
        if "file" not in names:
            raise BadRequest("Missing required parameter: 'file'.")
        if "model" not in names:
            raise BadRequest("Missing required parameter: 'model'.")
        file = upload.file
        if not file.filename:
            raise BadRequest("The 'file' part needs a filename.")
        if len(file.data) > MAX_FILE:
            raise BadRequest("Maximum content size limit (26214400) exceeded.")
        fields = upload.fields
        model = fields["model"]
        if model not in MODELS:
            raise BadRequest(f"Invalid model {model!r}.")
        fmt = fields.get("response_format", "json")
        if fmt not in FORMATS or (model.startswith("gpt-4o") and fmt not in ("json", "text")):
            raise BadRequest(f"response_format '{fmt}' is not compatible with model '{model}'.")
        language = fields.get("language")
        if language is not None and not re.fullmatch(r"[a-z]{2}", language):
            raise BadRequest(f"Invalid language {language!r}: use ISO-639-1 format.")
        if not file.filename.endswith(".wav"):
            raise BadRequest("This fake only understands .wav uploads.")
        try:
            channels, width, rate, pcm = wav_pcm16(file.data)
        except ValueError as exc:
            raise BadRequest(f"Invalid file format: {exc}") from None
        if channels != 1 or width != 2:
            raise BadRequest("This fake wants mono 16-bit WAV.")
        if not pcm:
            raise BadRequest("Audio file is too short.")
        upload.sample_rate, upload.pcm = rate, pcm
        return upload

    def _recognise(self, upload: Upload) -> str:
        seg = Segmenter(upload.sample_rate, rms_threshold=self.rms_threshold)
        seg.feed(upload.pcm)
        texts = [self._next() for _ in range(seg.segments)]
        return " ".join(t for t in texts if t) if seg.segments else self.silence_text

    def _next(self) -> str:
        i = next(self._script)
        return self.utterances[i] if i < len(self.utterances) else ""
