"""Fake OpenAI ``POST /v1/audio/speech`` (protocols/openai-rest.md §3), plus the tone-streaming machinery
shared with the other HTTP TTS fakes.

The fake is strict where the real API is: Bearer auth, required/known fields only, voice list, input length,
speed range, ``instructions`` refused for ``tts-1*``. It only *produces* ``pcm`` (24 kHz s16le) and refuses
other formats, so a client that forgets ``response_format: "pcm"`` fails loudly.

Audio is a deterministic 440 Hz tone at about -12 dBFS lasting ``len(input) * ms_per_char`` ms, streamed in
odd-sized chunks. Fault knobs: ``status`` (401/403/429/500…, with ``retry_after``), ``first_byte_delay_s``,
``stall_after_bytes`` (send that much, then hang until the client goes away), ``drop_after_bytes`` (send
that much, then kill the connection mid-body), ``hold_until_in_flight`` (answer nobody until that many
requests are open at once: proves a client does not queue requests behind a small connection pool).

    fake = FakeOpenAIAudio(api_key="sk-test")
    async with running(fake.app) as srv:
        OpenAITTS(api_key="sk-test", base_url=srv.http_url + "/v1")
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import warnings
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

TONE_HZ = 440.0
#: -12 dBFS peak.
TONE_AMPLITUDE = round(32767 * 10 ** (-12 / 20))
#: Cycled to cut the body; odd sizes and a 1-byte first chunk split samples so clients must re-frame.
DEFAULT_CHUNK_SIZES: tuple[int, ...] = (1, 1023, 777, 4097, 333)


def tone(encoding: str, sample_rate: int, duration_ms: float) -> bytes:
    """A 440 Hz sine of ``duration_ms`` as ``pcm16`` (s16le), ``mulaw`` or ``alaw`` (via stdlib audioop)."""
    n = int(sample_rate * duration_ms / 1000)
    t = np.arange(n, dtype=np.float64) / sample_rate
    pcm = (np.sin(2 * math.pi * TONE_HZ * t) * TONE_AMPLITUDE).astype("<i2").tobytes()
    if encoding == "pcm16":
        return pcm
    if encoding == "mulaw":
        return audioop.lin2ulaw(pcm, 2)
    if encoding == "alaw":
        return audioop.lin2alaw(pcm, 2)
    raise ValueError(f"unknown encoding {encoding}")


def cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """Split ``data`` by cycling through ``sizes``."""
    out: list[bytes] = []
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(data[pos : pos + size])
        pos += size
        i += 1
    return out


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any
    raw_body: bytes
    client: tuple[str, int] | None


@dataclass
class ToneStreamFake:
    """Base of the HTTP TTS fakes: fault knobs, request log, and the streamed tone response."""

    api_key: str = "test-key"
    ms_per_char: float = 40.0
    first_byte_delay_s: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    stall_after_bytes: int | None = None
    drop_after_bytes: int | None = None
    chunk_sizes: tuple[int, ...] = DEFAULT_CHUNK_SIZES
    requests: list[RecordedRequest] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    #: Streams that ended because the client went away before the body finished.
    aborted: int = 0
    completed: int = 0
    aborted_event: asyncio.Event = field(default_factory=asyncio.Event)
    hold_until_in_flight: int | None = None
    in_flight: int = 0
    max_in_flight: int = 0
    _all_in: asyncio.Event = field(default_factory=asyncio.Event)
    #: Vendor-like pacing (the benchmark): audio in chunks of ``pace_chunk_ms`` released at ``pace_speed``
    #: times real time after the first byte. 0 streams as fast as the socket takes it (``chunk_sizes``).
    pace_chunk_ms: float = 0.0
    pace_speed: float = 4.0

    async def record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        client = (request.client.host, request.client.port) if request.client else None
        rec = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params),
            body=body,
            raw_body=raw,
            client=client,
        )
        self.requests.append(rec)
        return rec

    @property
    def client_ports(self) -> list[int]:
        return [r.client[1] for r in self.requests if r.client]

    def fault_headers(self) -> dict[str, str]:
        return {"retry-after": self.retry_after} if self.retry_after is not None else {}

    async def stream(self, data: bytes, media_type: str, bytes_per_ms: float = 0.0) -> Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold_until_in_flight is not None:
                if self.in_flight >= self.hold_until_in_flight:
                    self._all_in.set()
                await self._all_in.wait()
            if self.first_byte_delay_s:
                await asyncio.sleep(self.first_byte_delay_s)
        except BaseException:
            self.in_flight -= 1
            raise
        return StreamingResponse(self._body(data, bytes_per_ms), media_type=media_type)

    async def _body(self, data: bytes, bytes_per_ms: float = 0.0) -> AsyncIterator[bytes]:
        sent = 0
        finished = False
        paced = self.pace_chunk_ms > 0 and bytes_per_ms > 0
        if paced:
            size = max(1, int(bytes_per_ms * self.pace_chunk_ms))
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
        else:
            chunks = cut(data, self.chunk_sizes)
        try:
            for i, chunk in enumerate(chunks):
                if paced and i:
                    await asyncio.sleep(self.pace_chunk_ms / self.pace_speed / 1000.0)
                if self.stall_after_bytes is not None and sent >= self.stall_after_bytes:
                    await asyncio.Event().wait()  # hang until the client disconnects
                if self.drop_after_bytes is not None and sent >= self.drop_after_bytes:
                    raise ConnectionAbortedError("fake: dropping the connection mid-body")
                yield chunk
                sent += len(chunk)
                await asyncio.sleep(0)
            finished = True
            self.completed += 1
        finally:
            self.in_flight -= 1
            if not finished and self.drop_after_bytes is None:
                self.aborted += 1
                self.aborted_event.set()


OPENAI_VOICES = frozenset(
    {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
)
OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_FORMATS = frozenset({"mp3", "opus", "aac", "flac", "wav", "pcm"})
OPENAI_FIELDS = frozenset(
    {"model", "input", "voice", "response_format", "speed", "instructions", "stream_format"}
)
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def openai_error(
    status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = {401: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}.get(
        status, "invalid_request_error"
    )
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class FakeOpenAIAudio(ToneStreamFake):
    """Serves ``POST /v1/audio/speech``; ``.app`` is the ASGI app."""

    api_key: str = "sk-test"

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/audio/speech", self._speech, methods=["POST"])])

    def _validate(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "We could not parse the JSON body of your request."
        for key in body:
            if key not in OPENAI_FIELDS:
                return f"Unrecognized request argument supplied: {key}"
        model = body.get("model")
        if not isinstance(model, str) or not any(
            model == m or _DATED.sub("", model) == m for m in OPENAI_MODELS
        ):
            return f"Invalid value for 'model': {model!r}."
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return "Missing required parameter: 'input'."
        if len(text) > 4096:
            return "'input' is too long: maximum 4096 characters."
        voice = body.get("voice")
        if isinstance(voice, dict):
            if not str(voice.get("id", "")).startswith("voice_"):
                return "Invalid custom voice id."
        elif voice not in OPENAI_VOICES:
            return f"Invalid value for 'voice': {voice!r}."
        fmt = body.get("response_format", "mp3")
        if fmt not in OPENAI_FORMATS:
            return f"Invalid value for 'response_format': {fmt!r}."
        if fmt != "pcm":
            return f"fake serves response_format 'pcm' only (got {fmt!r})"
        speed = body.get("speed", 1.0)
        if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
            return f"Invalid value for 'speed': {speed!r}; expected 0.25 to 4.0."
        if "instructions" in body and (
            not isinstance(body["instructions"], str) or model.startswith("tts-1")
        ):
            return "'instructions' is not supported with this model."
        stream_format = body.get("stream_format", "audio")
        if stream_format not in ("audio", "sse"):
            return f"Invalid value for 'stream_format': {stream_format!r}."
        if stream_format == "sse":
            return "fake serves stream_format 'audio' only"
        return None

    async def _speech(self, request: Request) -> Response:
        rec = await self.record(request)
        auth = rec.headers.get("authorization", "")
        if auth != f"Bearer {self.api_key}":
            given = auth.removeprefix("Bearer ")
            return openai_error(401, f"Incorrect API key provided: {given}.", code="invalid_api_key")
        if self.status is not None:
            return openai_error(self.status, f"fake fault {self.status}", headers=self.fault_headers())
        if not rec.headers.get("content-type", "").startswith("application/json"):
            return openai_error(400, "Content-Type must be application/json.")
        problem = self._validate(rec.body)
        if problem:
            return openai_error(400, problem)
        text: str = rec.body["input"]
        self.texts.append(text)
        return await self.stream(tone("pcm16", 24000, len(text) * self.ms_per_char), "audio/pcm")
