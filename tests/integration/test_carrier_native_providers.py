"""Carrier-native audio by default for Soniox, Speechmatics, Cartesia TTS, Rime and LMNT (issue 19).

Each call pairs one STT and one TTS under test, both real clients against their strict fakes on
127.0.0.1, through the real server and a fake carrier. Asserted: the format each fake vendor was asked for
(Soniox's config ``audio_format``, Speechmatics' ``StartRecognition.audio_format``, Cartesia's request
``output_format``, Rime's ``Accept``/``samplingRate``, LMNT's ``format``/``sample_rate``), and that the
audio passed through untouched when the formats match: the caller's exact bytes reached the STT and the
TTS vendor's exact bytes reached the caller. A pinned format (an explicit argument, even the default
spelled out) is honoured and the call converts, so the caller still hears the tone at the right length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from getpatter.stt.soniox import SonioxSTT
from getpatter.stt.speechmatics import SpeechmaticsSTT
from getpatter.tts.cartesia import CartesiaTTS
from getpatter.tts.lmnt import LMNTTTS
from getpatter.tts.rime import RimeTTS
from tests.fakes.cartesia_tts import FakeCartesiaTTS
from tests.fakes.lmnt import FakeLMNT
from tests.fakes.openai_audio import TONE_HZ, tone
from tests.fakes.rime import FakeRime
from tests.fakes.server import Running, running
from tests.fakes.soniox import FakeSoniox
from tests.fakes.speechmatics import FakeSpeechmatics
from tests.fakes.twilio_media import pcm16_16k_to_mulaw_8k, tone_pcm16_16k
from tests.integration._matrix import dominant_hz
from tests.integration.harness import call_harness
from tests.integration.telnyx_harness import telnyx_harness
from tests.integration.test_carrier_native import _one_turn

UTTERANCES = ["What are your opening hours?"]
REPLIES = ["We are open nine to five."]
GREETING = "Hello, thanks for calling."
TONE_MS = 500  # what _one_turn says
MS_PER_CHAR = 10.0
#: How each vendor names the two carrier formats, in our terms.
_NAMES = {
    "pcm_s16le": "pcm16",
    "audio/pcm": "pcm16",
    "raw": "pcm16",
    "mulaw": "mulaw",
    "pcm_mulaw": "mulaw",
    "audio/x-mulaw": "mulaw",
    "ulaw": "mulaw",
}
MULAW = ("mulaw", 8000)
PCM16 = ("pcm16", 16000)
Asked = set[tuple[str, int]]


@dataclass(frozen=True)
class Vendor:
    fake: Callable[[], Any]
    #: ``(fake, server, variant)`` -> the provider; variant is "unset", "pinned" or "for_twilio".
    build: Callable[[Any, Running, str], Any]
    #: Every (encoding, rate) the fake was asked for.
    asked: Callable[[Any], Asked]


def _soniox(f: FakeSoniox, s: Running, variant: str) -> SonioxSTT:
    if variant == "for_twilio":
        return SonioxSTT.for_twilio(f.api_key, base_url=s.ws_url)
    pinned: dict[str, Any] = {"audio_format": "pcm_s16le"} if variant == "pinned" else {}
    return SonioxSTT(f.api_key, base_url=s.ws_url, **pinned)


def _speechmatics(f: FakeSpeechmatics, s: Running, variant: str) -> SpeechmaticsSTT:
    if variant == "for_twilio":
        return SpeechmaticsSTT.for_twilio(f.api_key, base_url=s.ws_url)
    pinned: dict[str, Any] = {"sample_rate": 16000} if variant == "pinned" else {}
    return SpeechmaticsSTT(f.api_key, base_url=s.ws_url, **pinned)


def _tts(cls: Any, pinned: dict[str, Any]) -> Callable[[Any, Running, str], Any]:
    def build(f: Any, s: Running, variant: str) -> Any:
        if variant == "for_twilio":
            return cls.for_twilio(api_key=f.api_key, base_url=s.http_url)
        return cls(api_key=f.api_key, base_url=s.http_url, **(pinned if variant == "pinned" else {}))

    return build


VENDORS: dict[str, Vendor] = {
    "soniox": Vendor(
        lambda: FakeSoniox(utterances=list(UTTERANCES)),
        _soniox,
        lambda f: {(_NAMES[c.config["audio_format"]], c.config["sample_rate"]) for c in f.connections},
    ),
    "speechmatics": Vendor(
        lambda: FakeSpeechmatics(utterances=list(UTTERANCES)),
        _speechmatics,
        lambda f: {
            (_NAMES[c.start["audio_format"]["encoding"]], c.start["audio_format"]["sample_rate"])
            for c in f.connections
        },
    ),
    "cartesia": Vendor(
        lambda: FakeCartesiaTTS(ms_per_char=MS_PER_CHAR),
        _tts(CartesiaTTS, {"encoding": "pcm_s16le"}),
        lambda f: {
            (_NAMES[m["output_format"]["encoding"]], m["output_format"]["sample_rate"])
            for c in f.connections
            for m in c.messages
            if "output_format" in m
        },
    ),
    "rime": Vendor(
        lambda: FakeRime(ms_per_char=MS_PER_CHAR),
        _tts(RimeTTS, {"sample_rate": 16000}),
        lambda f: {(_NAMES[r.headers["accept"]], r.body["samplingRate"]) for r in f.requests},
    ),
    "lmnt": Vendor(
        lambda: FakeLMNT(ms_per_char=MS_PER_CHAR),
        _tts(LMNTTTS, {"format": "raw"}),
        lambda f: {(_NAMES[r.body["format"]], r.body["sample_rate"]) for r in f.requests},
    ),
}
PAIRS = [("soniox", "cartesia"), ("speechmatics", "rime"), ("soniox", "lmnt")]


def _spoken(tts_fake: Any) -> list[str]:
    if isinstance(tts_fake, FakeCartesiaTTS):
        return [text for conn in tts_fake.connections for text in conn.transcripts.values()]
    return list(tts_fake.texts)


def _stt_audio(stt_fake: Any) -> bytes:
    return b"".join(bytes(conn.audio) for conn in stt_fake.connections)


async def _call(pair: tuple[str, str], variant: str, carrier: str) -> tuple[Any, Any, Any, Any]:
    """One call with the pair's STT and TTS; returns (stt fake, tts fake, caller, harness)."""
    stt_vendor, tts_vendor = VENDORS[pair[0]], VENDORS[pair[1]]
    stt_fake, tts_fake = stt_vendor.fake(), tts_vendor.fake()
    async with running(stt_fake.app) as stt_srv, running(tts_fake.app) as tts_srv:
        providers = {
            "stt": stt_vendor.build(stt_fake, stt_srv, variant),
            "tts": tts_vendor.build(tts_fake, tts_srv, variant),
        }
        harness = (
            call_harness(utterances=UTTERANCES, replies=REPLIES, providers=providers)
            if carrier == "twilio"
            else telnyx_harness(codec=carrier, utterances=UTTERANCES, replies=REPLIES, providers=providers)
        )
        async with harness as h:
            call = await _one_turn(h)
        await providers["tts"].close()
    assert [turn["text"] for turn in h.ended[0]["transcript"]] == [GREETING, UTTERANCES[0], REPLIES[0]]
    assert _spoken(tts_fake) == [GREETING, REPLIES[0]]
    return stt_fake, tts_fake, call, h


def _assert_passed_through(stt_fake: Any, tts_fake: Any, speech: bytes, agent: bytes, fmt: str) -> None:
    """The caller's speech reached the STT byte for byte; each sentence's vendor audio reached the caller."""
    assert speech in _stt_audio(stt_fake)
    for text in _spoken(tts_fake):
        assert tone(fmt, 8000 if fmt == "mulaw" else 16000, len(text) * MS_PER_CHAR) in agent, text


@pytest.mark.parametrize("variant", ["unset", "for_twilio"])
@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
async def test_twilio_asks_each_vendor_for_mulaw_8k(pair: tuple[str, str], variant: str) -> None:
    stt_fake, tts_fake, call, _ = await _call(pair, variant, "twilio")
    assert VENDORS[pair[0]].asked(stt_fake) == {MULAW}
    assert VENDORS[pair[1]].asked(tts_fake) == {MULAW}
    caller_speech = pcm16_16k_to_mulaw_8k(tone_pcm16_16k(TONE_MS))
    _assert_passed_through(stt_fake, tts_fake, caller_speech, call.agent_audio_mulaw(), "mulaw")


@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
async def test_twilio_pinned_pcm16_is_honoured_and_converted(pair: tuple[str, str]) -> None:
    stt_fake, tts_fake, call, _ = await _call(pair, "pinned", "twilio")
    assert VENDORS[pair[0]].asked(stt_fake) == {PCM16}
    assert VENDORS[pair[1]].asked(tts_fake) == {PCM16}
    # Converted both ways: the STT got PCM16 16 kHz for the whole call, the caller the tone in mu-law.
    call_s = call.media_frames_sent * 0.020
    received_s = len(_stt_audio(stt_fake)) / (2 * 16000)
    assert call_s - 0.2 <= received_s <= call_s + 0.02, (received_s, call_s)
    heard = call.agent_audio_mulaw()
    expected = sum(len(text) for text in _spoken(tts_fake)) * MS_PER_CHAR * 8
    assert abs(len(heard) - expected) <= 8 * 20 * 2, (len(heard), expected)
    assert abs(dominant_hz(heard) - TONE_HZ) < 15


@pytest.mark.parametrize("codec", ["L16", "PCMU"])
@pytest.mark.parametrize("pair", PAIRS, ids="+".join)
async def test_telnyx_asks_each_vendor_for_the_stream_codec(pair: tuple[str, str], codec: str) -> None:
    stt_fake, tts_fake, call, _ = await _call(pair, "unset", codec)
    fmt = PCM16 if codec == "L16" else MULAW
    assert VENDORS[pair[0]].asked(stt_fake) == {fmt}
    assert VENDORS[pair[1]].asked(tts_fake) == {fmt}
    speech = tone_pcm16_16k(TONE_MS)
    caller_speech = speech if codec == "L16" else pcm16_16k_to_mulaw_8k(speech)
    _assert_passed_through(stt_fake, tts_fake, caller_speech, call.agent_audio(), fmt[0])
