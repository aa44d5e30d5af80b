"""What the provider-matrix tests share: a whole call of N caller turns, a usage observer, pitch."""

from __future__ import annotations

import warnings

import numpy as np

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import UsageRecorded
from tests.fakes.twilio import FakeCall
from tests.integration.harness import Harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

GREETING = "Hello, thanks for calling."
SETTLE_MS = 200  # agent quiet this long = its turn is over
TONE_MS = 300  # caller "speech"
MULAW_BYTES_PER_MS = 8  # Twilio: mu-law 8 kHz


class Usage:
    """An observer collecting every ``UsageRecorded`` of the call."""

    def __init__(self) -> None:
        self.events: list[UsageRecorded] = []

    def __call__(self, bus: EventBus, ctx: CallContext) -> None:
        bus.on(UsageRecorded, self.events.append)

    def of(self, kind: str) -> list[UsageRecorded]:
        return [e for e in self.events if e.kind == kind]


async def turn(call: FakeCall) -> None:
    await call.say_tone(TONE_MS)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=SETTLE_MS, timeout=15)


async def run_call(h: Harness, turns: int) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)  # the greeting
    await call.wait_agent_quiet(quiet_ms=SETTLE_MS, timeout=10)
    for _ in range(turns):
        await turn(call)
    await call.hangup()
    await h.wait_ended()
    return call


def dominant_hz(mulaw_8k: bytes) -> float:
    pcm = np.frombuffer(audioop.ulaw2lin(mulaw_8k, 2), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))])
