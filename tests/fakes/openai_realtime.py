"""A strict fake of the OpenAI Realtime WebSocket, GA shape (``shared/protocols/openai-realtime.md``).

    fake = FakeOpenAIRealtime(script=[Reply(text="Hi there!"), Reply(tool="get_weather", arguments={...})],
                              utterances=["what's the weather in Rome"])
    async with running(fake.app) as srv:
        engine = OpenAIRealtime(api_key="sk-test", base_url=srv.http_url + "/v1")

Strict like the real service: a missing/wrong Bearer key or missing ``model`` is refused with an HTTP
status and OpenAI's error JSON; an ``OpenAI-Beta`` header gets close code 4000 ``beta_api_shape_disabled``;
malformed client events, unknown event types, beta-shaped ``session.update`` fields, a ``response.create``
during an active response, a cancel with nothing active, a truncate beyond the generated audio and a
tool output for an unknown ``call_id`` all get an ``error`` event (the session goes on). Every client
event is recorded (``Connection.events``) and every server event too (``Connection.sent``).

Server VAD runs on the appended audio in *audio* time (decoded with stdlib ``audioop``, independent of
getpatter's codecs): voiced >= ``min_voiced_ms`` -> ``speech_started`` (``audio_start_ms`` includes the
prefix padding); ``silence_duration_ms`` of silence -> ``speech_stopped``, ``committed``, the user item,
an automatic response and the transcription (the next scripted utterance). Responses take the next
``Reply``: a tone in the session's output format whose length follows the text, in ``chunk_ms`` chunks,
with interleaved transcript deltas, and/or a function call (the fake then waits for the client's
``function_call_output`` + ``response.create``). Knobs: ``reject_status``/``retry_after``,
``drop_after_events`` (close 1011 after that many server events), ``stall_after_chunks`` (a response
stops after that many audio chunks until cancelled), ``beta_events`` (send beta event names).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import math
import warnings
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from tests.fakes.openai_realtime_checks import (
    CLIENT_EVENTS,
    GA_TO_BETA,
    Invalid,
    default_session,
    merge_session,
    validate_item,
    validate_response_options,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

_WINDOW_MS = 10


@dataclass(frozen=True)
class Reply:
    """One scripted model turn: spoken ``text`` and/or a call of ``tool`` with ``arguments``."""

    text: str = ""
    tool: str | None = None
    arguments: Mapping[str, Any] | str = field(default_factory=dict)


@dataclass
class Connection:
    """What one client connection sent and received; tests assert on it."""

    headers: dict[str, str]
    query: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    session: dict[str, Any] = field(default_factory=dict)
    close_code: int | None = None

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    def sent_of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.sent if e.get("type") == kind]

    @property
    def control_events(self) -> list[dict[str, Any]]:
        """Client events other than audio appends, in order."""
        return [e for e in self.events if e.get("type") != "input_audio_buffer.append"]


def tone(ms: int, rate: int, amp: int = 8000, hz: float = 440.0) -> bytes:
    """Test helper: a PCM16 LE sine of ``ms`` milliseconds at ``rate``."""
    n = rate * ms // 1000
    return array("h", (int(amp * math.sin(2 * math.pi * hz * i / rate)) for i in range(n))).tobytes()


def encode(pcm: bytes, fmt_type: str) -> bytes:
    """Test helper: PCM16 -> the wire bytes of a GA format type (``audio/pcmu``/``pcma``/``pcm``)."""
    if fmt_type == "audio/pcmu":
        return audioop.lin2ulaw(pcm, 2)
    if fmt_type == "audio/pcma":
        return audioop.lin2alaw(pcm, 2)
    return pcm


class _Dropped(Exception):
    pass


class _Response:
    def __init__(self, response_id: str, reply: Reply, options: dict[str, Any]) -> None:
        self.id, self.reply, self.options = response_id, reply, options
        self.cancel_reason: str | None = None
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class FakeOpenAIRealtime:
    def __init__(
        self,
        api_key: str = "sk-test",
        script: Iterable[Reply | str] = (),
        *,
        utterances: Iterable[str] = (),
        reject_status: int | None = None,
        retry_after: float | None = None,
        drop_after_events: int | None = None,
        stall_after_chunks: int | None = None,
        beta_events: bool = False,
        rms_threshold: float = 500.0,
        min_voiced_ms: int = 60,
        ms_per_char: int = 20,
        chunk_ms: int = 100,
        fallback_text: str = "Sorry, could you say that again?",
    ) -> None:
        self.api_key = api_key
        self.script = [Reply(text=r) if isinstance(r, str) else r for r in script]
        self.utterances = list(utterances)
        self.reject_status, self.retry_after = reject_status, retry_after
        self.drop_after_events = drop_after_events
        self.stall_after_chunks = stall_after_chunks
        self.beta_events = beta_events
        self.rms_threshold, self.min_voiced_ms = rms_threshold, min_voiced_ms
        self.ms_per_char, self.chunk_ms = ms_per_char, chunk_ms
        self.fallback_text = fallback_text
        self.connections: list[Connection] = []
        self.refusals: list[tuple[int, str]] = []
        self._replies = itertools.count()
        self._heard = itertools.count()
        self.app = Starlette(routes=[WebSocketRoute("/v1/realtime", self._endpoint)])

    def next_reply(self) -> Reply:
        i = next(self._replies)
        return self.script[i] if i < len(self.script) else Reply(text=self.fallback_text)

    def next_utterance(self) -> str:
        i = next(self._heard)
        return self.utterances[i] if i < len(self.utterances) else ""

    async def _endpoint(self, ws: WebSocket) -> None:
        refusal = self._refusal(ws)
        if refusal is not None:
            status, code, message = refusal
            self.refusals.append((status, message))
            headers = {"retry-after": f"{self.retry_after:g}"} if self.retry_after is not None else {}
            body = {
                "error": {"message": message, "type": "invalid_request_error", "code": code, "param": None}
            }
            await ws.send_denial_response(JSONResponse(body, status_code=status, headers=headers))
            return
        conn = Connection(dict(ws.headers), dict(ws.query_params))
        self.connections.append(conn)
        await ws.accept()
        if "openai-beta" in conn.headers:
            conn.close_code = 4000
            await ws.close(4000, "beta_api_shape_disabled")
            return
        await _Session(self, ws, conn).run()

    def _refusal(self, ws: WebSocket) -> tuple[int, str, str] | None:
        if self.reject_status is not None:
            return self.reject_status, "rate_limit_exceeded", "Injected refusal."
        auth = ws.headers.get("authorization")
        if auth is None:
            return 401, "missing_api_key", "You didn't provide an API key."
        if auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")
            masked = f"{shown[:3]}****{shown[-2:]}" if len(shown) > 6 else "****"
            return 401, "invalid_api_key", f"Incorrect API key provided: {masked}."
        if not ws.query_params.get("model"):
            return 400, "missing_required_parameter", "Missing required parameter: 'model'."
        return None


class _Session:
    """One connection's state: effective session config, conversation items, VAD, the active response."""

    def __init__(self, fake: FakeOpenAIRealtime, ws: WebSocket, conn: Connection) -> None:
        self.fake, self.ws, self.conn = fake, ws, conn
        self.ids = itertools.count(1)
        self.lock = asyncio.Lock()
        self.config = default_session(conn.query["model"])
        conn.session = self.config
        self.items: dict[str, dict[str, Any]] = {}
        self.generated_ms: dict[str, int] = {}
        self.last_item = ""
        self.active: _Response | None = None
        self.responses = 0
        self.pcm = b""
        self.t_ms = self.voiced = self.silence = self.buffered_ms = self.committed_ms = 0
        self.speech_start: int | None = None
        self.speech_item = ""
        self.closed = False

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):06d}"

    async def send(self, event: dict[str, Any]) -> None:
        if self.closed:
            raise _Dropped
        if self.fake.beta_events:
            if event["type"] == "conversation.item.done":
                return
            event = {**event, "type": GA_TO_BETA.get(event["type"], event["type"])}
        event = {"event_id": self.new_id("event"), **event}
        async with self.lock:
            self.conn.sent.append(event)
            await self.ws.send_text(orjson.dumps(event).decode())
            limit = self.fake.drop_after_events
            if limit is not None and len(self.conn.sent) >= limit:
                self.closed = True
                self.conn.close_code = 1011
                await self.ws.close(1011, "injected drop")
                raise _Dropped

    async def error(self, invalid: Invalid, event_id: object = None) -> None:
        detail = {"type": "invalid_request_error", "code": invalid.code, "message": invalid.message}
        await self.send({"type": "error", "error": {**detail, "param": invalid.param, "event_id": event_id}})

    async def run(self) -> None:
        try:
            await self.send({"type": "session.created", "session": self.config})
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    self.conn.close_code = message.get("code")
                    break
                await self.on_frame(message.get("text"))
        except _Dropped:
            pass
        finally:
            if self.active is not None and self.active.task is not None:
                self.active.task.cancel()

    async def on_frame(self, text: str | None) -> None:
        if text is None:
            await self.error(Invalid("invalid_json", "Binary frames are not supported; send JSON text."))
            return
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            await self.error(Invalid("invalid_json", "The server failed to parse the event: not JSON."))
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.error(Invalid("invalid_value", "Every event needs a string 'type'.", "type"))
            return
        self.conn.events.append(event)
        event_id = event.get("event_id")
        try:
            if event_id is not None and not isinstance(event_id, str):
                raise Invalid("invalid_type", "event_id must be a string.", "event_id")
            handler = CLIENT_EVENTS.get(event["type"])
            if handler is None:
                raise Invalid("invalid_value", f"Invalid value: '{event['type']}'.", "type")
            await getattr(self, handler)(event)
        except Invalid as invalid:
            await self.error(invalid, event_id)

    # -- client events --------------------------------------------------------------------------------

    async def session_update(self, event: dict[str, Any]) -> None:
        merge_session(self.config, event.get("session"))
        await self.send({"type": "session.updated", "session": self.config})

    async def audio_append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise Invalid("missing_required_parameter", "Missing required parameter: 'audio'.", "audio")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("invalid_value", "audio is not valid base64.", "audio") from None
        self.conn.audio += data
        fmt = self.config["audio"]["input"]["format"]["type"]
        if fmt == "audio/pcmu":
            pcm, rate = audioop.ulaw2lin(data, 2), 8000
        elif fmt == "audio/pcma":
            pcm, rate = audioop.alaw2lin(data, 2), 8000
        else:
            pcm, rate = data, 24000
        self.pcm += pcm
        window = rate * _WINDOW_MS // 1000 * 2
        while len(self.pcm) >= window:
            chunk, self.pcm = self.pcm[:window], self.pcm[window:]
            await self.vad_window(audioop.rms(chunk, 2))

    async def vad_window(self, rms: int) -> None:
        self.t_ms += _WINDOW_MS
        self.buffered_ms += _WINDOW_MS
        vad = self.config["audio"]["input"]["turn_detection"]
        if not vad:
            return
        threshold = self.fake.rms_threshold * float(vad.get("threshold", 0.5)) / 0.5
        if rms >= threshold:
            self.silence = 0
            self.voiced += _WINDOW_MS
            if self.speech_start is None and self.voiced >= self.fake.min_voiced_ms:
                onset = self.t_ms - self.voiced
                self.speech_start = max(0, onset - int(vad.get("prefix_padding_ms", 300)))
                self.speech_item = self.new_id("item")
                await self.send(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": self.speech_start,
                        "item_id": self.speech_item,
                    }
                )
                if self.active is not None and vad.get("interrupt_response", True):
                    await self.cancel_active("turn_detected")
            return
        self.voiced = 0
        self.silence += _WINDOW_MS
        if self.speech_start is not None and self.silence >= int(vad.get("silence_duration_ms", 500)):
            self.speech_start = None
            stop = {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": self.t_ms}
            await self.send({**stop, "item_id": self.speech_item})
            await self.commit_user_audio(
                self.speech_item, auto_respond=bool(vad.get("create_response", True))
            )

    async def commit_user_audio(self, item_id: str, *, auto_respond: bool) -> None:
        previous, ms = self.last_item or None, self.buffered_ms
        self.committed_ms += ms
        self.buffered_ms = 0
        await self.send(
            {"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id}
        )
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
        }
        await self.add_item({**item, "content": [{"type": "input_audio", "transcript": None}]})
        if auto_respond and self.active is None:
            await self.start_response({})
        transcription = self.config["audio"]["input"].get("transcription")
        if transcription:
            heard = self.fake.next_utterance()
            done = "conversation.item.input_audio_transcription.completed"
            usage = {"type": "duration", "seconds": round(ms / 1000, 3)}
            await self.send(
                {"type": done, "item_id": item_id, "content_index": 0, "transcript": heard, "usage": usage}
            )

    async def audio_commit(self, event: dict[str, Any]) -> None:
        if self.buffered_ms == 0:
            raise Invalid("input_audio_buffer_commit_empty", "Error committing input audio buffer: empty.")
        await self.commit_user_audio(self.new_id("item"), auto_respond=False)

    async def audio_clear(self, event: dict[str, Any]) -> None:
        self.buffered_ms, self.pcm, self.speech_start = 0, b"", None
        await self.send({"type": "input_audio_buffer.cleared"})

    async def item_create(self, event: dict[str, Any]) -> None:
        item = validate_item(event.get("item"), self.items)
        item = {"id": item.get("id") or self.new_id("item"), "object": "realtime.item", **item}
        await self.add_item({**item, "status": "completed"})

    async def add_item(self, item: dict[str, Any]) -> None:
        previous, self.last_item = self.last_item or None, item["id"]
        self.items[item["id"]] = item
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    async def item_truncate(self, event: dict[str, Any]) -> None:
        item_id, index, end_ms = event.get("item_id"), event.get("content_index"), event.get("audio_end_ms")
        item = self.items.get(item_id) if isinstance(item_id, str) else None
        if not isinstance(item_id, str) or item is None or item.get("role") != "assistant":
            raise Invalid("invalid_value", f"Assistant item '{item_id}' not found.", "item_id")
        if index != 0:
            raise Invalid("invalid_value", "content_index must be 0 for audio.", "content_index")
        if not isinstance(end_ms, int) or isinstance(end_ms, bool) or end_ms < 0:
            raise Invalid("invalid_type", "audio_end_ms must be a non-negative integer.", "audio_end_ms")
        generated = self.generated_ms.get(item_id, 0)
        if end_ms > generated:
            raise Invalid("invalid_value", f"Audio content of {generated}ms is shorter than {end_ms}ms.")
        self.generated_ms[item_id] = end_ms
        done = {"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0}
        await self.send({**done, "audio_end_ms": end_ms})

    async def item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or self.items.pop(item_id, None) is None:
            raise Invalid("invalid_value", f"Item '{item_id}' not found.", "item_id")
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def response_create(self, event: dict[str, Any]) -> None:
        options = validate_response_options(event.get("response"))
        if self.active is not None:
            message = f"Conversation already has an active response in progress: {self.active.id}."
            raise Invalid("conversation_already_has_active_response", message)
        await self.start_response(options)

    async def response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        if self.active is None or (wanted is not None and wanted != self.active.id):
            raise Invalid("response_cancel_not_active", "Cancellation failed: no active response found.")
        await self.cancel_active("client_cancelled")

    # -- responses ------------------------------------------------------------------------------------

    async def cancel_active(self, reason: str) -> None:
        """Stop the in-flight response and wait until it has sent its ``response.done`` (cancelled)."""
        response = self.active
        if response is None or response.task is None:
            return
        response.cancel_reason = reason
        response.wake.set()
        with contextlib.suppress(_Dropped):
            await asyncio.shield(response.task)

    async def start_response(self, options: dict[str, Any]) -> None:
        response = _Response(self.new_id("resp"), self.fake.next_reply(), options)
        self.active = response
        body = {"id": response.id, "object": "realtime.response", "status": "in_progress", "output": []}
        await self.send({"type": "response.created", "response": {**body, "usage": None}})
        response.task = asyncio.create_task(self.stream(response))

    async def stream(self, r: _Response) -> None:
        output: list[dict[str, Any]] = []
        text_out = 0
        try:
            if r.reply.text:
                text_out += await self.speak(r, r.reply.text, output)
            if r.reply.tool and r.cancel_reason is None:
                text_out += await self.call_tool(r, output)
            usage = self.usage(r, output, text_out)
            status = "cancelled" if r.cancel_reason else "completed"
            details = {"type": "cancelled", "reason": r.cancel_reason} if r.cancel_reason else None
            self.active = None
            body = {"id": r.id, "object": "realtime.response", "status": status, "status_details": details}
            await self.send({"type": "response.done", "response": {**body, "output": output, "usage": usage}})
        except _Dropped:
            pass
        finally:
            if self.active is r:
                self.active = None

    async def speak(self, r: _Response, text: str, output: list[dict[str, Any]]) -> int:
        item_id, index = self.new_id("item"), len(output)
        ids = {"response_id": r.id, "item_id": item_id, "output_index": index, "content_index": 0}
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "message"}
        item = {**item, "role": "assistant", "status": "in_progress", "content": []}
        self.items[item_id] = item
        await self.send(
            {"type": "response.output_item.added", "response_id": r.id, "output_index": index, "item": item}
        )
        previous, self.last_item = self.last_item or None, item_id
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.send(
            {"type": "response.content_part.added", **ids, "part": {"type": "audio", "transcript": ""}}
        )
        fmt = self.config["audio"]["output"]["format"]
        rate = 24000 if fmt["type"] == "audio/pcm" else 8000
        audio = encode(tone(len(text) * self.fake.ms_per_char, rate), fmt["type"])
        step = (rate * self.fake.chunk_ms // 1000) * (2 if fmt["type"] == "audio/pcm" else 1)
        chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
        words = text.split(" ")
        per = max(1, math.ceil(len(words) / len(chunks)))
        pieces = [" ".join(words[i : i + per]) for i in range(0, len(words), per)]
        said: list[str] = []
        for n, chunk in enumerate(chunks):
            if n == self.fake.stall_after_chunks:
                await r.wake.wait()
            if r.cancel_reason is not None:
                break
            if n < len(pieces):
                piece = (" " if said else "") + pieces[n]
                said.append(piece)
                await self.send({"type": "response.output_audio_transcript.delta", **ids, "delta": piece})
            await self.send(
                {"type": "response.output_audio.delta", **ids, "delta": base64.b64encode(chunk).decode()}
            )
            self.generated_ms[item_id] = (
                self.generated_ms.get(item_id, 0) + self.fake.chunk_ms * len(chunk) // step
            )
            await asyncio.sleep(0)
        transcript = "".join(said) if r.cancel_reason else text
        part = {"type": "output_audio", "transcript": transcript}
        done = {**item, "status": "incomplete" if r.cancel_reason else "completed", "content": [part]}
        self.items[item_id] = done
        if r.cancel_reason is None:
            await self.send({"type": "response.output_audio.done", **ids})
            await self.send({"type": "response.output_audio_transcript.done", **ids, "transcript": text})
            await self.send(
                {"type": "response.content_part.done", **ids, "part": {"type": "audio", "transcript": text}}
            )
        await self.send(
            {"type": "response.output_item.done", "response_id": r.id, "output_index": index, "item": done}
        )
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": done})
        output.append(done)
        return len(transcript)

    async def call_tool(self, r: _Response, output: list[dict[str, Any]]) -> int:
        item_id, call_id, index = self.new_id("item"), self.new_id("call"), len(output)
        args = r.reply.arguments
        arguments = args if isinstance(args, str) else orjson.dumps(dict(args)).decode()
        item: dict[str, Any] = {"id": item_id, "object": "realtime.item", "type": "function_call"}
        item = {**item, "status": "in_progress", "call_id": call_id, "name": r.reply.tool, "arguments": ""}
        await self.send(
            {"type": "response.output_item.added", "response_id": r.id, "output_index": index, "item": item}
        )
        previous, self.last_item = self.last_item or None, item_id
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        ids = {"response_id": r.id, "item_id": item_id, "output_index": index, "call_id": call_id}
        half = len(arguments) // 2
        for delta in (arguments[:half], arguments[half:]):
            await self.send({"type": "response.function_call_arguments.delta", **ids, "delta": delta})
        done_args = {"type": "response.function_call_arguments.done", **ids, "arguments": arguments}
        await self.send(done_args if self.fake.beta_events else {**done_args, "name": r.reply.tool})
        done = {**item, "status": "completed", "arguments": arguments}
        self.items[item_id] = done
        await self.send(
            {"type": "response.output_item.done", "response_id": r.id, "output_index": index, "item": done}
        )
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": done})
        output.append(done)
        return len(arguments)

    def usage(self, r: _Response, output: list[dict[str, Any]], text_chars: int) -> dict[str, Any]:
        """Plausible token counts: 10 audio tokens/s in, 20/s out, ~4 chars a text token; from the second
        response on, the instructions prefix counts as cached (in 64-token blocks, like the real cache)."""
        self.responses += 1
        text_in = max(1, len(str(self.config.get("instructions") or "")) // 4) + 4 * len(self.items)
        audio_in = self.committed_ms // 100
        cached_text = (text_in // 64) * 64 if self.responses > 1 else 0
        audio_out = sum(self.generated_ms.get(str(i["id"]), 0) for i in output) // 50
        text_out = max(0, text_chars // 4)
        cached = {"text_tokens": cached_text, "audio_tokens": 0, "image_tokens": 0}
        return {
            "total_tokens": text_in + audio_in + text_out + audio_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens": cached_text,
                "cached_tokens_details": cached,
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }
