"""The dashboard's "Call this agent" softphone in headless Chromium with a fake microphone.

Chromium plays a WAV as the microphone (``--use-file-for-fake-audio-capture``, looped) and grants the
permission itself. The call runs through the real server, the in-page carrier and a pipeline agent whose
vendors are the fakes of ``tests/fakes`` (Deepgram cuts the caller's voiced segments into scripted
utterances). Waits are hang guards only.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from getpatter.call.events import Interrupted
from tests.fakes._patience import patient
from tests.integration.harness import Harness, call_harness

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]
playwright_api = pytest.importorskip("playwright.async_api", reason="pip install playwright")
expect = playwright_api.expect

ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
RATE = 16000
#: The fake microphone: (start s, end s) of voice in a looped 20 s WAV; silence elsewhere.
VOICE = ((2.5, 4.0), (10.0, 12.0))
LOOP_S = 20.0
GREETING = "Hello, thanks for calling."
FIRST = "Hello, <b>can</b> you hear me? <img src=x onerror=alert(1)>"  # shown as text, never markup
SECOND = "Wait, stop please."
LONG_REPLY = " ".join(
    f"Sentence number {i} of a long answer about our opening hours and prices." for i in range(1, 13)
)


def voice_wav(path: Path) -> Path:
    """Speech-like voiced stretches (a gliding harmonic tone with syllable-rate loudness) in silence."""
    frames = bytearray()
    for n in range(int(LOOP_S * RATE)):
        t = n / RATE
        value = 0.0
        for start, end in VOICE:
            if start <= t < end:
                f0 = 140.0 + 30.0 * math.sin(2 * math.pi * 0.7 * t)
                env = 0.55 + 0.45 * math.sin(2 * math.pi * 4.0 * t)
                value = env * sum(math.sin(2 * math.pi * f0 * k * t) / k for k in (1, 2, 3, 4)) * 0.3
        frames += struct.pack("<h", int(max(-1.0, min(1.0, value)) * 32000))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return path


@pytest.fixture
async def mic_page(tmp_path: Path) -> AsyncIterator[Any]:
    wav = voice_wav(tmp_path / "caller.wav")
    async with playwright_api.async_playwright() as pw:
        args = [*ARGS, f"--use-file-for-fake-audio-capture={wav}"]
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
        context = await browser.new_context()
        page = await context.new_page()
        page.outside = []
        page.on(
            "request",
            lambda r: (
                None
                if "127.0.0.1" in r.url or r.url.startswith(("data:", "blob:"))
                else page.outside.append(r.url)
            ),
        )
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        try:
            yield page
        finally:
            await context.close()
            await browser.close()


async def number(page: Any, key: str) -> int:
    value = await page.locator("#phone").get_attribute(f"data-{key}")
    return int(value or 0)


async def until(predicate: Any, timeout: float = 20.0) -> None:
    async def loop() -> None:
        while not await predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), patient(timeout))


async def _muted_and_sending(page: Any, sent_before: int) -> bool:
    return await number(page, "level") == 0 and await number(page, "frames-sent") > sent_before + 25


async def open_board(page: Any, h: Harness) -> None:
    token = h.phone.dashboard_token
    assert token, "the harness serves a public host: the dashboard must have a token"
    await page.goto(f"{h.server.http_url}/?token={token}")
    await expect(page.locator("#conn")).to_have_text("Live", timeout=patient(10) * 1000)
    await expect(page.locator("#phone")).to_be_visible(timeout=patient(10) * 1000)


async def test_a_call_from_the_page_greets_hears_answers_barges_in_and_lands_in_history(
    mic_page: Any,
) -> None:
    page = mic_page
    barge_ins: list[Interrupted] = []
    async with call_harness(
        utterances=[FIRST, SECOND, "Thanks."],
        replies=[LONG_REPLY, "Sure, I stopped.", "Bye."],
        first_message=GREETING,
        ms_per_char=25.0,
        observers=[lambda bus, ctx: bus.on(Interrupted, barge_ins.append)],
    ) as h:
        try:
            await open_board(page, h)
            await page.click("#phone-call")
            await expect(page.locator("#phone")).to_have_attribute(
                "data-state", "live", timeout=patient(10) * 1000
            )
            call_id = await page.locator("#phone").get_attribute("data-call-id")
            assert call_id and call_id.startswith("BR")

            # The greeting's audio reaches the page and plays.
            await until(lambda: number(page, "samples-played"))
            assert await number(page, "media-received") > 0
            # The caller's sentence (fake microphone -> worklet -> socket -> STT) is heard...
            await h.wait_transcript("user", FIRST, timeout=30)
            assert await number(page, "frames-sent") > 0
            # ...and answered: the long reply plays, until the caller talks over it.
            await expect(page.locator("#phone-transcript")).to_contain_text(FIRST, timeout=patient(10) * 1000)
            await until(lambda: number(page, "clears"), timeout=40)
            assert barge_ins, "the page cleared its playback without a barge-in"
            await h.wait_transcript("user", SECOND, timeout=30)
            played_after_clear = await number(page, "samples-played")
            assert await number(page, "marks") > 0  # playback position went back as marks

            # Per-turn latency shows up as the call goes; the level meter moved while the caller spoke.
            await expect(page.locator("#phone-turns")).to_contain_text("Turn", timeout=patient(10) * 1000)
            assert await number(page, "loudest") > 0
            assert await page.locator("#phone b, #phone img").count() == 0
            # Mute: the line stays up (silence is sent) and the meter drops to zero.
            sent_before = await number(page, "frames-sent")
            await page.click("#phone-mute")
            await expect(page.locator("#phone-mute")).to_have_attribute("aria-pressed", "true")
            await until(lambda: _muted_and_sending(page, sent_before))

            await page.click("#phone-hangup")
            await h.wait_ended(timeout=20)
            await expect(page.locator("#phone")).to_have_attribute("data-state", "ended")
            row = page.locator(f"#history tbody tr[data-call-id='{call_id}']")
            await expect(row).to_be_visible(timeout=patient(10) * 1000)
        finally:
            await page.close()  # its SSE stream would hold up the server's shutdown
    ended = h.ended[0]
    assert ended["call_id"] == call_id
    assert ended["reason"] in ("stopped", "socket_closed")
    # The interrupted reply is kept only as far as it was heard.
    agent_lines = [t["text"] for t in ended["transcript"] if t["role"] == "assistant"]
    assert agent_lines[0] == GREETING
    cut = agent_lines[1]
    assert cut != LONG_REPLY and LONG_REPLY.startswith(cut.rstrip(".")), cut
    assert played_after_clear > 0
    record = h.phone.metrics_store.get_call(call_id)
    assert record is not None
    assert record["telephony_provider"] == "browser"
    assert record["caller"] == "browser"
    assert page.errors == [] and page.outside == []


async def test_a_refused_microphone_says_how_to_allow_it_and_places_no_call(tmp_path: Path) -> None:
    args = [a for a in ARGS if a != "--use-fake-ui-for-media-stream"]  # no auto-granted permission
    async with call_harness() as h, playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            context = await browser.new_context(permissions=[])
            page = await context.new_page()
            await open_board(page, h)
            await page.click("#phone-call")
            await expect(page.locator("#phone")).to_have_attribute("data-state", "error")
            await expect(page.locator("#phone-error")).to_contain_text("Allow the microphone")
            await expect(page.locator("#phone-call")).to_be_visible()
            await context.close()
        finally:
            await browser.close()
    assert h.ended == [] and h.phone.metrics_store.get_active_calls() == []
