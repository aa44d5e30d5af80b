"""The pieces every HTTP LLM client shares: the SSE parser (``llm/_sse.py``) and the vendor error helpers
(``llm/_http.py``, ``_http_status.retry_after_seconds``)."""

from __future__ import annotations

import email.utils
import itertools
import time
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from getpatter._http_status import retry_after_seconds
from getpatter.errors import (
    AuthenticationError,
)
from getpatter.llm._http import redact, status_error, vendor_message
from getpatter.llm._sse import SSEEvent, SSEParser


# ---------------------------------------------------------------------------------------------- SSE parser
def feed_all(pieces: Sequence[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    return out + parser.close()


def test_sse_fields_comments_multiline_and_done() -> None:
    raw = (
        b"\xef\xbb\xbf: hello\r\n\r\n"
        b"data: one\n\n"
        b"event: delta\ndata: two\ndata:  three\nid: 5\nretry: 300\n\n"
        b"event: lonely\n\n"
        b"data\n\n"
        b"unknown: x\ndata:[DONE]"
    )
    events = feed_all([raw])
    assert events == [
        SSEEvent("one"),
        SSEEvent("two\n three", event="delta", id="5", retry=300),
        SSEEvent("", id="5", retry=300),
        SSEEvent("[DONE]", id="5", retry=300),  # dispatched at close although the blank line never came
    ]


def test_sse_crlf_split_across_chunks_and_mid_utf8() -> None:
    raw = "data: caffè ☕\r\n\r\ndata: 🎉\r\r".encode()
    split_cr = raw.index(b"\r") + 1
    split_utf8 = raw.index("☕".encode()) + 1
    assert feed_all([raw[:split_utf8], raw[split_utf8:split_cr], raw[split_cr:]]) == [
        SSEEvent("caffè ☕"),
        SSEEvent("🎉"),
    ]
    parser = SSEParser()
    assert (
        parser.feed(b"data: x\r") == []
        and parser.feed(b"\n") == []
        and parser.feed(b"\r\n") == [SSEEvent("x")]
    )


_line_text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.lists(_line_text, min_size=1, max_size=3),
            st.sampled_from(["", "delta", "done"]),
            st.booleans(),
        ),
        max_size=6,
    ),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_sse_roundtrip_survives_any_chunk_boundaries(
    events: list[tuple[list[str], str, bool]], newline: str, cuts: list[int]
) -> None:
    text = ""
    expected: list[SSEEvent] = []
    for lines, name, with_comment in events:
        if with_comment:
            text += ": ping" + newline
        if name:
            text += f"event: {name}{newline}"
        text += "".join(f"data: {line}{newline}" for line in lines) + newline
        expected.append(SSEEvent("\n".join(lines), event=name or "message"))
    raw = text.encode("utf-8")
    bounds = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed_all(pieces) == expected


# ---------------------------------------------------------------------------------------------- _http helpers
def test_retry_after_variants_and_vendor_message_shapes() -> None:
    assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < (retry_after_seconds({"retry-after": later}) or 0) <= 120
    assert vendor_message(b'{"error": {"message": "bad model"}}') == "bad model"
    assert (
        vendor_message(b'{"type": "error", "error": {"type": "x", "message": "overloaded"}}') == "overloaded"
    )
    assert vendor_message(b'{"error": "plain"}') == "plain"
    assert vendor_message(b"<html>502 Bad Gateway</html>") == "<html>502 Bad Gateway</html>"
    assert redact("key sk-abc and sk-abc", ["sk-abc", None, ""]) == "key *** and ***"
    err = status_error(
        "openai",
        401,
        {},
        b'{"error": {"message": "Incorrect API key provided: sk-live-1"}}',
        secrets=["sk-live-1"],
    )
    assert isinstance(err, AuthenticationError) and "sk-live-1" not in str(err)
