"""Incremental Server-Sent Events parser shared by the HTTP-streaming LLM clients.

The network hands us bytes cut at arbitrary offsets: inside a line, between ``\\r`` and ``\\n``, even in
the middle of a multi-byte UTF-8 character. :class:`SSEParser` buffers exactly what it cannot decide yet
and emits each event as soon as its terminating blank line arrives, so the first token of an LLM reply
reaches the caller without waiting for more bytes.

Field handling follows the WHATWG "event stream" rules: ``data:`` lines of one event are joined with
``\\n``, one space after the colon is dropped, lines starting with ``:`` are comments, ``event:``/``id:``/
``retry:`` are kept, unknown fields are ignored, and ``\\r\\n``, ``\\r`` and ``\\n`` all end a line. One
deliberate difference: :meth:`SSEParser.close` still dispatches an event whose final blank line never came
(some servers end the body right after ``data: [DONE]``); the standard would drop it.

``[DONE]`` is not special here: it is an ordinary event whose ``data`` the caller compares.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, AsyncIterable
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. ``event`` is ``"message"`` when the server sent no ``event:`` line."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Feed raw bytes with :meth:`feed`; call :meth:`close` once at end of body."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._started = False
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._retry: int | None = None
        self._has_fields = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return the events it completed (possibly none)."""
        return self._consume(self._decoder.decode(chunk), final=False)

    def close(self) -> list[SSEEvent]:
        """Flush the decoder and any unterminated last line/event at end of stream."""
        events = self._consume(self._decoder.decode(b"", final=True), final=True)
        if self._buf:
            line, self._buf = self._buf, ""
            self._field(line)
        if self._has_fields:
            ev = self._dispatch()
            if ev is not None:
                events.append(ev)
        return events

    def _consume(self, text: str, *, final: bool) -> list[SSEEvent]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix(_BOM)
        buf = self._buf + text
        events: list[SSEEvent] = []
        pos = 0
        for m in _LINE_END.finditer(buf):
            # A trailing lone "\r" may be the first half of "\r\n" split across chunks: wait and see.
            if m.group() == "\r" and m.end() == len(buf) and not final:
                break
            line = buf[pos : m.start()]
            pos = m.end()
            if line:
                self._field(line)
            elif self._has_fields:
                ev = self._dispatch()
                if ev is not None:
                    events.append(ev)
        self._buf = buf[pos:]
        return events

    def _field(self, line: str) -> None:
        if line.startswith(":"):
            return  # comment / keep-alive
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        self._has_fields = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event, self._has_fields = [], "", False
        if not data:
            return None  # an event without data lines is not dispatched (WHATWG)
        return SSEEvent(data="\n".join(data), event=event or "message", id=self._last_id, retry=self._retry)


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncGenerator[SSEEvent, None]:
    """Parse an async byte stream (e.g. ``httpx.Response.aiter_bytes()``) into events as they complete."""
    parser = SSEParser()
    async for chunk in chunks:
        for ev in parser.feed(chunk):
            yield ev
    for ev in parser.close():
        yield ev
