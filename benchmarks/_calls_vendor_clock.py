"""bench_calls.py, pipeline mode: the fake vendors' *measured* share of each turn.

The fakes are paced to configured delays, but on a busy machine they overshoot them (timer granularity,
their own loop). So the vendors process timestamps each vendor's own work with ``time.monotonic()`` (the
same ``CLOCK_MONOTONIC`` in every process on Linux) and the parent subtracts what the vendors really took:

* **STT**: the audio completing the endpoint silence reached the fake Deepgram (``t_audio``) -> its
  ``speech_final`` Results were sent (``t_final``);
* **LLM**: the chat request was received -> the token carrying the character after the reply's first
  sentence was sent (what the sentence chunker needs before the TTS can start; a one-sentence reply: the
  stream's last event, ``[DONE]``);
* **TTS**: the request was received (WebSocket: the text flushed, i.e. the generation due) -> the first
  audio was sent.

Turns are tied to calls exactly, at any number of calls: each caller sends its index as a custom stream
parameter ``bench_call``, which the system prompt carries (``[call {bench_call}]``, the SDK's prompt
variables); the fake STT's utterances are numbered (``number i``), so the LLM request's last user message
names its final; the fake model marks its reply with ``i`` by the letter case of the first sentence (same
length, same tokens, same audio), so the TTS request names its LLM request. Stamps are taken on the
fakes' ASGI edge (after each ``send``), so the fakes' own scheduling counts as theirs.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from pathlib import Path
from typing import Any

PROMPT_TAG = " [call {bench_call}]"
_CALL = re.compile(r"\[call (-?\d+)\]")
_NUMBER = re.compile(r"number (\d+)")

Events = dict[str, list[dict[str, Any]]]


def first_sentence_chars(reply: str) -> int:
    """How many characters of ``reply`` the chunker needs to see its first sentence end (the sentence and
    the character after it), as :func:`_calls_caller.first_sentence_ms` counts them."""
    ends = [i for i in (reply.find(c) for c in ".?!") if i >= 0]
    return min(min(ends) + 2, len(reply)) if ends else len(reply)


def _tag_positions(reply: str) -> list[int]:
    """Letters of the first sentence after its first character: the bits of a reply's tag."""
    end = first_sentence_chars(reply)
    return [i for i in range(1, min(end, len(reply))) if reply[i].isalpha()]


def tag_reply(reply: str, number: int | None) -> str:
    """``reply`` with the first sentence's letters upper-cased where ``number`` has a 1 bit."""
    if number is None:
        return reply
    chars = list(reply)
    for bit, pos in enumerate(_tag_positions(reply)):
        if number >> bit & 1:
            chars[pos] = chars[pos].swapcase()
    return "".join(chars)


def read_tag(reply: str, text: str) -> int | None:
    """The number :func:`tag_reply` put in ``text`` (a prefix of the tagged reply), None if ``text`` is not
    the reply (the greeting)."""
    text = text.strip()
    if not text or text.lower() != reply[: len(text)].lower():
        return None
    return sum(
        1 << bit
        for bit, pos in enumerate(_tag_positions(reply))
        if pos < len(text) and text[pos] != reply[pos]
    )


def utterance_number(text: str) -> int | None:
    m = _NUMBER.search(text)
    return int(m.group(1)) if m else None


# -- the vendors process: stamping wrappers ---------------------------------------------------------------


class VendorClock:
    """Collects the vendors' timestamps; ``dump(path)`` writes them for the parent."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.events: Events = {"stt": [], "llm": [], "tts": []}

    def dump(self, path: str) -> None:
        Path(path).write_text(json.dumps(self.events))

    def stt(self, app: Any) -> Any:
        """Wrap the Deepgram fake: per final, when the audio ending the turn arrived and when it was sent."""
        events = self.events["stt"]

        async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "websocket":
                await app(scope, receive, send)
                return
            query = dict(
                p.split("=", 1) for p in scope.get("query_string", b"").decode().split("&") if "=" in p
            )
            width = 2 if query.get("encoding") == "linear16" else 1
            bytes_per_ms = width * int(query.get("sample_rate", "8000")) / 1000.0
            arrivals: deque[tuple[float, float]] = deque(maxlen=400)  # (audio ms received so far, time)
            received = [0]
            conn = id(arrivals)

            async def timed_receive() -> dict[str, Any]:
                msg: dict[str, Any] = await receive()
                data = msg.get("bytes")
                if data:
                    received[0] += len(data)
                    arrivals.append((received[0] / bytes_per_ms, time.monotonic()))
                return msg

            async def timed_send(msg: dict[str, Any]) -> None:
                await send(msg)
                text = msg.get("text")
                if text and '"speech_final":true' in text:
                    t_final = time.monotonic()
                    body = json.loads(text)
                    end_ms = (body["start"] + body["duration"]) * 1000.0
                    t_audio = next((t for ms, t in arrivals if ms >= end_ms - 0.5), None)
                    transcript = body["channel"]["alternatives"][0]["transcript"]
                    events.append(
                        {"conn": conn, "number": utterance_number(transcript), "t_audio": t_audio}
                        | {"t_final": t_final}
                    )

            await app(scope, timed_receive, timed_send)

        return wrapped

    def llm(self, app: Any) -> Any:
        """Wrap the chat fake: request received -> the first sentence (and the next character) sent."""
        events, need = self.events["llm"], first_sentence_chars(self.reply)
        whole = len(self.reply)

        def make_sent() -> Any:
            content = [0]

            def sent(msg: dict[str, Any], rec: dict[str, Any], body: bytes) -> bool:
                chunk: bytes = msg.get("body") or b""
                for line in chunk.decode().splitlines():
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:]).get("choices", []):
                            content[0] += len((choice.get("delta") or {}).get("content") or "")
                # A reply that is one sentence ends (for the chunker) with the stream: the fake paces its
                # finish, usage and [DONE] events like tokens, so they count as the model's time too.
                if content[0] < need or not (need < whole or b"[DONE]" in chunk or not msg.get("more_body")):
                    return False
                events.append(rec | _llm_request(body))
                return True

            return sent

        return _timed_http(app, make_sent)

    def tts_http(self, app: Any) -> Any:
        """Wrap the ElevenLabs HTTP fake: request received -> first audio bytes sent."""
        events = self.events["tts"]

        def sent(msg: dict[str, Any], rec: dict[str, Any], body: bytes) -> bool:
            text = str(json.loads(body or b"{}").get("text", ""))
            events.append(rec | {"number": read_tag(self.reply, text)})
            return True

        return _timed_http(app, lambda: sent)

    def tts_ws_class(self, base: Any) -> Any:
        """A ``FakeElevenLabsWS`` that stamps each generation: due (``_speak`` called) -> first audio sent."""
        events, reply = self.events["tts"], self.reply

        class TimedWS(base):  # type: ignore[misc]
            async def _speak(self, ws: Any, conn: Any, text: str, *args: Any) -> int:
                rec = {"t_request": time.monotonic(), "t_sent": None, "number": read_tag(reply, text)}
                conn.bench_timing = rec
                frames: int = await super()._speak(ws, conn, text, *args)
                return frames

            async def _send(self, ws: Any, conn: Any, msg: dict[str, Any]) -> None:
                await base._send(ws, conn, msg)
                rec = getattr(conn, "bench_timing", None)
                if "audio" in msg and rec is not None and rec["t_sent"] is None:
                    rec["t_sent"] = time.monotonic()
                    events.append(rec)

        return TimedWS


def _timed_http(app: Any, make_sent: Any) -> Any:
    """Wrap an HTTP fake: ``t_request`` when the request body is in; after each response body chunk sent,
    ``sent(msg, rec, body)`` (one per request, from ``make_sent()``) is given ``rec`` with ``t_sent`` stamped
    until it returns True (it has recorded its event)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body = bytearray()
        rec: dict[str, Any] = {"t_request": None}
        sent, done = make_sent(), [False]

        async def timed_receive() -> dict[str, Any]:
            msg: dict[str, Any] = await receive()
            body.extend(msg.get("body", b""))
            if msg["type"] == "http.request" and not msg.get("more_body"):
                rec["t_request"] = time.monotonic()
            return msg

        async def timed_send(msg: dict[str, Any]) -> None:
            await send(msg)
            if not done[0] and msg["type"] == "http.response.body" and msg.get("body"):
                done[0] = sent(msg, rec | {"t_sent": time.monotonic()}, bytes(body))

        await app(scope, timed_receive, timed_send)

    return wrapped


def _llm_request(raw: bytes) -> dict[str, Any]:
    """The call tag (system prompt), the caller's turn (user messages so far) and the utterance number."""
    messages = json.loads(raw or b"{}").get("messages", [])
    texts = [(m.get("role"), m.get("content") if isinstance(m.get("content"), str) else "") for m in messages]
    system = next((c for r, c in texts if r == "system"), "")
    users = [c for r, c in texts if r == "user"]
    call = _CALL.search(system or "")
    return {
        "call": call.group(1) if call else None,
        "turn": len(users),
        "number": utterance_number(users[-1]) if users else None,
    }


# -- the parent: per-turn vendor shares and the SDK's remainder ----------------------------------------------


def attribute(
    events: Events, calls: list[tuple[int, list[float]]], endpoint_ms: float, configured: dict[str, float]
) -> dict[str, Any]:
    """Per caller turn (``calls``: each call's index and its turn latencies in order), the vendors' measured
    shares and ``sdk_added = turn - endpoint - stt - llm - tts``; percentiles over the attributed turns."""
    from _calls_caller import percentiles

    finals = {e["number"]: e for e in events.get("stt", []) if e["number"] is not None and e["t_audio"]}
    llm = {(e["call"], e["turn"]): e for e in events.get("llm", []) if e["call"] is not None}
    tts: dict[int, dict[str, Any]] = {}
    for e in events.get("tts", []):
        if e["number"] is not None and e["t_request"] is not None:
            tts.setdefault(e["number"], e)  # the first request of a reply carries its first sentence
    shares: dict[str, list[float]] = {"stt": [], "llm": [], "tts": []}
    gaps: dict[str, list[float]] = {"stt_to_llm": [], "llm_to_tts": [], "audio_in_and_out": []}
    sdk: list[float] = []
    turns = 0
    for index, turn_ms in calls:
        for k, latency in enumerate(turn_ms):
            turns += 1
            req = llm.get((str(index), k + 1))
            fin = finals.get(req["number"]) if req else None
            out = tts.get(req["number"]) if req else None
            if req is None or fin is None or out is None:
                continue
            stt_ms = (fin["t_final"] - fin["t_audio"]) * 1000
            llm_ms = (req["t_sent"] - req["t_request"]) * 1000
            tts_ms = (out["t_sent"] - out["t_request"]) * 1000
            for stage, ms in (("stt", stt_ms), ("llm", llm_ms), ("tts", tts_ms)):
                shares[stage].append(ms)
            added = latency - endpoint_ms - stt_ms - llm_ms - tts_ms
            sdk.append(added)
            to_llm = (req["t_request"] - fin["t_final"]) * 1000
            to_tts = (out["t_request"] - req["t_sent"]) * 1000
            gaps["stt_to_llm"].append(to_llm)
            gaps["llm_to_tts"].append(to_tts)
            gaps["audio_in_and_out"].append(added - to_llm - to_tts)
    return {
        "turns": turns,
        "turns_attributed": len(sdk),
        "sdk_added_ms": percentiles(sdk),
        "vendor_share_ms": {stage: percentiles(v) for stage, v in shares.items()},
        "vendor_configured_ms": configured,
        "vendor_overshoot_ms": {
            stage: percentiles([ms - configured[stage] for ms in v])
            | {"min": round(min(v) - configured[stage], 2) if v else None}
            for stage, v in shares.items()
        },
        "sdk_gaps_ms": {name: percentiles(v) for name, v in gaps.items()},
        "formula": f"turn_latency - ceil(endpoint)({endpoint_ms:g}) - stt(t_final - t_audio)"
        " - llm(t_first_sentence - t_request) - tts(t_first_audio - t_request), as the fakes stamped them",
    }


def load_events(path: Path) -> Events:
    try:
        events: Events = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"stt": [], "llm": [], "tts": []}
    return events


def summary_lines(m: dict[str, Any], fmt: Any) -> list[str]:
    """The printed lines: SDK-added from the measured vendor share, the shares and their overshoot."""
    over = m["vendor_overshoot_ms"]
    share = m["vendor_share_ms"]
    stages = "  ".join(
        f"{s} {share[s]['p50']:.1f} (+{over[s]['p50']:.1f})" for s in ("stt", "llm", "tts") if share[s]["n"]
    )
    gaps = m["sdk_gaps_ms"]
    parts = "  ".join(f"{g} {gaps[g]['p50']:.1f}" for g in gaps if gaps[g]["n"])
    return [
        f"  SDK-added (measured vendor share) ms  {fmt(m['sdk_added_ms'])}"
        f"  [{m['turns_attributed']}/{m['turns']} turns attributed]",
        f"  vendor share p50 ms    {stages}   (+ overshoot over the configured delay)",
        f"  SDK-added parts p50 ms {parts}",
    ]
