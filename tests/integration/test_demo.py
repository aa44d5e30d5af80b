"""``patter demo`` end to end (shorter script): offline models, simulator, the real server."""

from __future__ import annotations

import contextlib
import io
import json
import wave
from pathlib import Path

import pytest
from rich.console import Console

pytest.importorskip("faster_whisper", reason="needs the 'local' extra")


async def test_demo_call_transcribes_the_caller_and_saves_stereo_audio(tmp_path: Path) -> None:
    from getpatter.demo import run_demo

    out = io.StringIO()
    wav = tmp_path / "call.wav"
    result = await run_demo(
        Console(file=out, width=120),
        lines=(
            "What are your opening hours?",
            "Can I book an appointment for Friday?",
            "That is great, goodbye!",
        ),
        save_audio=wav,
        persist=str(tmp_path / "logs"),
    )
    roles = [t["role"] for t in result.transcript]
    assert roles == ["assistant", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert "hours" in result.transcript[1]["text"].lower()  # really transcribed by Whisper
    assert result.transcript[2]["text"] == "We're open Monday to Friday, nine to five."
    assert result.transcript[4]["text"].startswith("You're booked for Friday at ten a.m.")
    assert result.tool_calls == ["book_appointment"]
    assert result.transcript[6]["text"] == "Thanks for calling Acme Dental. Goodbye!"
    assert len(result.latencies_ms) == 3 and all(ms > 0 for ms in result.latencies_ms)
    for turn, total in zip(result.breakdown, result.latencies_ms, strict=True):
        # where each answer's wait went: the three stages add up to the whole, none is negative
        assert turn.total == total
        assert min(turn.end_of_turn, turn.transcribe, turn.reply) >= 0
        assert turn.end_of_turn + turn.transcribe + turn.reply == pytest.approx(total)
    metadata = list((tmp_path / "logs" / "calls").glob("*/*/*/*/metadata.json"))
    assert len(metadata) == 1
    assert json.loads(metadata[0].read_text())["call_id"] == result.call_id
    printed = out.getvalue()
    assert "Live dashboard: http://127.0.0.1:" in printed
    assert "We're open Monday to Friday" in printed and "ms from end of speech" in printed
    assert result.p50_ms is not None
    assert f"Turn latency (end of caller speech to first agent audio): p50 {result.p50_ms:.0f} ms" in printed
    with wave.open(str(wav)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        assert w.getnframes() > 8000 * 5  # several seconds of call


async def test_demo_browser_mode_answers_a_caller_on_the_dashboard_softphone() -> None:
    """``patter demo --browser``: no simulated call; a caller on the softphone socket (as the page speaks
    it) is greeted and answered by the offline agent, with no keys."""
    import asyncio
    import base64
    import re

    from websockets.asyncio.client import connect

    from getpatter.demo import run_demo
    from getpatter.local import LocalTTS
    from tests.fakes._patience import patient

    out = io.StringIO()
    demo = asyncio.create_task(run_demo(Console(file=out, width=200), persist=False, softphone=True))
    try:
        async with asyncio.timeout(patient(60)):
            while not (found := re.search(r"Open http://127\.0\.0\.1:(\d+)/", out.getvalue())):
                assert not demo.done(), out.getvalue()
                await asyncio.sleep(0.1)
        port = int(found.group(1))
        question = b"".join([c async for c in LocalTTS(gain_db=0).synthesize("What are your opening hours?")])
        url = f"ws://127.0.0.1:{port}/api/dashboard/phone/socket"
        async with connect(url, origin=f"http://127.0.0.1:{port}") as ws:
            await ws.send(json.dumps({"event": "start", "sample_rates": [16000]}))
            started = json.loads(await ws.recv())
            assert started["event"] == "started" and started["sample_rate"] == 16000
            greeting = 0
            async with asyncio.timeout(patient(30)):
                while greeting < 5:
                    msg = json.loads(await ws.recv())
                    if msg["event"] == "media":
                        greeting += len(base64.b64decode(msg["audio"]))
                    elif msg["event"] == "mark":
                        await ws.send(json.dumps({"event": "mark", "name": msg["name"]}))
            speech = question + b"\x00\x00" * 16000 * 2
            for i in range(0, len(speech), 640):
                await ws.send(speech[i : i + 640])
                await asyncio.sleep(0.02)
            async with asyncio.timeout(patient(30)):
                while "We're open Monday to Friday" not in out.getvalue():
                    await asyncio.sleep(0.1)
        assert "hours" in out.getvalue().lower()
    finally:
        demo.cancel()
        with contextlib.suppress(BaseException):
            await demo
