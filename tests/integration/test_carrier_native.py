"""Carrier-native audio by default (issue 19): a provider whose format the user left unset is asked for the
carrier's own format on each call; a pinned format is honoured and transcoded.

What is asserted is the request each provider made to its fake vendor (Deepgram's ``encoding`` and
``sample_rate`` query, ElevenLabs' ``output_format`` query) under Twilio (mu-law 8 kHz), Telnyx L16
(PCM16 16 kHz) and Telnyx PCMU (mu-law 8 kHz), plus that the call was answered with those formats.
"""

from __future__ import annotations

from typing import Any

from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import running
from tests.integration.harness import call_harness
from tests.integration.telnyx_harness import telnyx_harness

UTTERANCES = ["What are your opening hours?"]
REPLIES = ["We are open nine to five."]


async def _one_turn(h: Any) -> Any:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)  # the greeting
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    await call.hangup()
    await h.wait_ended()
    return call


def _asked(h: Any) -> tuple[tuple[str, str], set[str]]:
    """(Deepgram encoding, sample_rate) of the call's one STT socket, and every TTS output_format."""
    [conn] = h.deepgram.connections
    formats = {r.query["output_format"] for r in h.tts.requests}
    return (conn.query["encoding"], conn.query["sample_rate"]), formats


def _answered(h: Any) -> None:
    texts = [turn["text"] for turn in h.ended[0]["transcript"]]
    assert texts == ["Hello, thanks for calling.", UTTERANCES[0], REPLIES[0]], texts


async def test_twilio_defaults_ask_for_mulaw_8k_both_ways() -> None:
    async with call_harness(utterances=UTTERANCES, replies=REPLIES) as h:
        call = await _one_turn(h)
    assert _asked(h) == (("mulaw", "8000"), {"ulaw_8000"})
    _answered(h)
    # Pass-through: the STT got exactly the carrier's bytes (one per sample), not a 16 kHz conversion.
    [conn] = h.deepgram.connections
    assert set(conn.audio[:160]) <= {0xFF, 0x7F}  # mu-law silence, as the caller sent it
    assert abs(len(conn.audio) - 160 * call.media_frames_sent) <= 160 * 3


async def test_twilio_pinned_formats_are_honoured_and_transcoded() -> None:
    deepgram = FakeDeepgram(utterances=UTTERANCES)
    tts = FakeElevenLabs(ms_per_char=20.0)
    async with running(deepgram.app) as dg_srv, running(tts.app) as tts_srv:
        pinned = {
            "stt": DeepgramSTT(
                deepgram.api_key, base_url=dg_srv.ws_url, encoding="linear16", sample_rate=16000
            ),
            "tts": ElevenLabsTTS(api_key=tts.api_key, base_url=tts_srv.http_url, output_format="pcm_16000"),
        }
        async with call_harness(utterances=UTTERANCES, replies=REPLIES, providers=pinned) as h:
            call = await _one_turn(h)
            h.deepgram, h.tts = deepgram, tts  # the pinned providers talked to these fakes
    assert _asked(h) == (("linear16", "16000"), {"pcm_16000"})
    _answered(h)
    # Transcoded both ways: the STT got PCM16 16 kHz (4 bytes per mu-law byte sent), the caller mu-law.
    [conn] = deepgram.connections
    assert abs(len(conn.audio) - 640 * call.media_frames_sent) <= 640 * 3
    assert len(call.agent_audio_mulaw()) >= sum(len(t) for t in tts.texts) * 20 * 8 * 0.95


async def test_telnyx_l16_defaults_ask_for_pcm16_16k() -> None:
    async with telnyx_harness(codec="L16", utterances=UTTERANCES, replies=REPLIES) as h:
        await _one_turn(h)
    assert _asked(h) == (("linear16", "16000"), {"pcm_16000"})
    _answered(h)


async def test_telnyx_pcmu_defaults_ask_for_mulaw_8k() -> None:
    async with telnyx_harness(codec="PCMU", utterances=UTTERANCES, replies=REPLIES) as h:
        await _one_turn(h)
    assert _asked(h) == (("mulaw", "8000"), {"ulaw_8000"})
    _answered(h)
