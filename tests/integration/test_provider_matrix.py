"""Issue 9: one whole pipeline call per STT and per TTS (the others held at the default fakes).

Every call runs through the real server with the fake Twilio carrier; only the provider under test is
swapped (``call_harness(providers=...)``) for its real client pointed at its strict fake on 127.0.0.1.

* STT: two turns; the exact transcript, and the fake received audio in the format the client declared
  (its handshake/config says so, and the byte count matches the call's audio time at that format).
* TTS: one turn; the fake synthesized exactly the sentences, and the caller heard a 440 Hz tone of the
  fake's ``ms_per_char`` length (a format mix-up changes the length or the pitch, or garbles frames).

The LLMs' matrix is ``test_provider_matrix_llm.py``; shared helpers are in ``_matrix.py``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from getpatter.audio.format import MULAW_8K
from getpatter.stt.assemblyai import AssemblyAISTT
from getpatter.stt.cartesia import CartesiaSTT
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.stt.openai_transcribe import OpenAITranscribeSTT
from getpatter.stt.soniox import SonioxSTT
from getpatter.stt.speechmatics import SpeechmaticsSTT
from getpatter.stt.whisper import WhisperSTT
from getpatter.tts.cartesia import CartesiaTTS
from getpatter.tts.elevenlabs import ElevenLabsTTS
from getpatter.tts.elevenlabs_ws import ElevenLabsWebSocketTTS
from getpatter.tts.lmnt import LMNTTTS
from getpatter.tts.openai import OpenAITTS
from getpatter.tts.rime import RimeTTS
from tests.fakes.assemblyai import FakeAssemblyAI
from tests.fakes.cartesia_stt import FakeCartesiaSTT
from tests.fakes.cartesia_tts import FakeCartesiaTTS
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.elevenlabs_ws import FakeElevenLabsWS
from tests.fakes.lmnt import FakeLMNT
from tests.fakes.openai_audio import TONE_HZ, FakeOpenAIAudio
from tests.fakes.openai_transcribe import FakeOpenAITranscribe
from tests.fakes.rime import FakeRime
from tests.fakes.server import Running, running
from tests.fakes.soniox import FakeSoniox
from tests.fakes.speechmatics import FakeSpeechmatics
from tests.integration.harness import call_harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

from tests.integration._matrix import GREETING, MULAW_BYTES_PER_MS, TONE_MS, Usage, dominant_hz, run_call

# ------------------------------------------------------------------------------------------------ STT

UTTERANCES = ["What are your opening hours?", "Thanks, goodbye."]
STT_REPLIES = ["Nine to five.", "Bye now."]


@dataclass(frozen=True)
class SttCase:
    make_fake: Callable[[list[str]], Any]
    make_stt: Callable[[Any, Running], Any]
    #: (encoding, sample rate) the client must declare and send.
    wire: tuple[str, int]
    #: (declared encoding, declared rate, bytes received) read from what the fake recorded.
    received: Callable[[Any], tuple[str, int, int]]
    #: What the vendor returns for a scripted utterance (AssemblyAI unformatted turns: raw words).
    heard: Callable[[str], str] = lambda text: text


def _unformatted(text: str) -> str:
    return re.sub(r"[^\w\s']", "", text.lower())


def _dg(fake: FakeDeepgram) -> tuple[str, int, int]:
    (conn,) = fake.connections
    return conn.query["encoding"], int(conn.query["sample_rate"]), len(conn.audio)


def _query(fake: Any) -> tuple[str, int, int]:
    (conn,) = fake.connections
    return conn.query.get("encoding", "pcm_s16le"), int(conn.query["sample_rate"]), len(conn.audio)


def _soniox(fake: FakeSoniox) -> tuple[str, int, int]:
    (conn,) = fake.connections
    assert conn.config is not None
    return conn.config["audio_format"], conn.config["sample_rate"], len(conn.audio)


def _speechmatics(fake: FakeSpeechmatics) -> tuple[str, int, int]:
    (conn,) = fake.connections
    assert conn.start is not None
    fmt = conn.start["audio_format"]
    return fmt["encoding"], fmt["sample_rate"], len(conn.audio)


def _uploads(fake: FakeOpenAITranscribe) -> tuple[str, int, int]:
    rates = {u.sample_rate for u in fake.uploads}
    assert len(rates) == 1, rates
    return "wav_pcm16", rates.pop(), sum(len(u.pcm) for u in fake.uploads)


PCM16 = ("pcm16", 16000)
MULAW = ("mulaw", 8000)

STT_CASES: dict[str, SttCase] = {
    "deepgram": SttCase(
        lambda u: FakeDeepgram(utterances=u),
        lambda f, s: DeepgramSTT(api_key=f.api_key, base_url=s.ws_url),
        MULAW,  # format left unset: carrier-native, Twilio's mu-law passes through
        _dg,
    ),
    "deepgram_pinned_linear16": SttCase(  # a pinned format is honoured (and transcoded to)
        lambda u: FakeDeepgram(utterances=u),
        lambda f, s: DeepgramSTT(
            api_key=f.api_key, base_url=s.ws_url, encoding="linear16", sample_rate=16000
        ),
        PCM16,
        _dg,
    ),
    "deepgram_for_twilio": SttCase(
        lambda u: FakeDeepgram(utterances=u),
        lambda f, s: DeepgramSTT.for_twilio(api_key=f.api_key, base_url=s.ws_url),
        MULAW,
        _dg,
    ),
    "assemblyai": SttCase(
        lambda u: FakeAssemblyAI(utterances=u),
        lambda f, s: AssemblyAISTT(f.api_key, base_url=s.ws_url),
        MULAW,  # format left unset: carrier-native, Twilio's mu-law passes through
        _query,
        _unformatted,  # format_turns=False is the client's default
    ),
    "assemblyai_for_twilio": SttCase(
        lambda u: FakeAssemblyAI(utterances=u),
        lambda f, s: AssemblyAISTT.for_twilio(f.api_key, base_url=s.ws_url),
        MULAW,
        _query,
        _unformatted,
    ),
    "cartesia": SttCase(
        lambda u: FakeCartesiaSTT(utterances=u),
        lambda f, s: CartesiaSTT(f.api_key, base_url=s.http_url),
        MULAW,  # format left unset: carrier-native, Twilio's mu-law passes through
        _query,
    ),
    "cartesia_for_twilio": SttCase(
        lambda u: FakeCartesiaSTT(utterances=u),
        lambda f, s: CartesiaSTT.for_twilio(f.api_key, base_url=s.http_url),
        MULAW,
        _query,
    ),
    "soniox": SttCase(
        lambda u: FakeSoniox(utterances=u),
        lambda f, s: SonioxSTT(f.api_key, base_url=s.ws_url),
        MULAW,  # format left unset: carrier-native, Twilio's mu-law passes through
        _soniox,
    ),
    "speechmatics": SttCase(
        lambda u: FakeSpeechmatics(utterances=u),
        lambda f, s: SpeechmaticsSTT(f.api_key, base_url=s.ws_url),
        MULAW,  # format left unset: carrier-native, Twilio's mu-law passes through
        _speechmatics,
    ),
    "whisper": SttCase(
        lambda u: FakeOpenAITranscribe(utterances=u),
        lambda f, s: WhisperSTT(f.api_key, base_url=s.http_url + "/v1"),
        PCM16,
        _uploads,
    ),
    "openai_transcribe": SttCase(
        lambda u: FakeOpenAITranscribe(utterances=u),
        lambda f, s: OpenAITranscribeSTT(f.api_key, base_url=s.http_url + "/v1"),
        PCM16,
        _uploads,
    ),
}
_ENCODING_NAMES = {
    "linear16": "pcm16",
    "pcm_s16le": "pcm16",
    "wav_pcm16": "pcm16",
    "mulaw": "mulaw",
    "pcm_mulaw": "mulaw",
}


@pytest.mark.parametrize("name", list(STT_CASES))
async def test_stt_two_turn_call(name: str) -> None:
    case = STT_CASES[name]
    fake = case.make_fake(list(UTTERANCES))
    usage = Usage()
    async with running(fake.app) as srv:
        stt = case.make_stt(fake, srv)
        async with call_harness(
            replies=list(STT_REPLIES), ms_per_char=5, providers={"stt": stt}, observers=[usage]
        ) as h:
            call = await run_call(h, turns=2)

    heard = [case.heard(u) for u in UTTERANCES]
    assert call.protocol_errors == []
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": heard[0]},
        {"role": "assistant", "text": STT_REPLIES[0]},
        {"role": "user", "text": heard[1]},
        {"role": "assistant", "text": STT_REPLIES[1]},
    ]
    assert h.llm.user_texts() == heard

    # The client declared the wire format it was built for, and the fake got audio in it.
    declared, rate, nbytes = case.received(fake)
    encoding, wire_rate = case.wire
    assert (_ENCODING_NAMES[declared], rate) == (encoding, wire_rate)
    used = stt.for_wire(MULAW_8K)  # what a Twilio call uses: carrier-native unless the format is pinned
    assert used.input_format.encoding == encoding and used.input_format.sample_rate == wire_rate
    width = 2 if encoding == "pcm16" else 1
    received_s = nbytes / (width * rate)
    (stt_usage,) = usage.of("stt")
    # Billed = sent; only AssemblyAI pads its last frame with silence to the vendor's 50 ms minimum.
    padding = received_s - stt_usage.audio_seconds
    assert -1e-6 <= padding <= 0.05 + 1e-6, (received_s, stt_usage.audio_seconds)
    call_s = call.media_frames_sent * 0.020
    if isinstance(fake, FakeOpenAITranscribe):
        # Batch: only each utterance is uploaded (tone plus a little pre-roll and trailing silence).
        assert len(fake.uploads) == 2
        for upload in fake.uploads:
            assert TONE_MS / 1000 <= upload.seconds <= TONE_MS / 1000 + 1.5, upload.seconds
    else:
        # Streaming: everything the caller sent, at the declared bytes per second (plus AssemblyAI's
        # padding of its last frame, bounded above).
        assert call_s - 0.2 <= received_s <= call_s + 0.02 + max(padding, 0.0), (received_s, call_s)


# ------------------------------------------------------------------------------------------------ TTS

TTS_MS_PER_CHAR = 10.0
TTS_REPLY = "We are open nine to five. Anything else?"
SENTENCES = [GREETING, "We are open nine to five.", "Anything else?"]


@dataclass(frozen=True)
class TtsCase:
    make_fake: Callable[[], Any]
    make_tts: Callable[[Any, Running], Any]
    #: The texts the fake synthesized, in order.
    texts: Callable[[Any], list[str]]
    #: (encoding, sample rate) the client asks the vendor for.
    output: tuple[str, int]


def _texts(fake: Any) -> list[str]:
    return list(fake.texts)


def _ws_spoken(fake: FakeElevenLabsWS) -> list[str]:
    return [text for conn in fake.connections for text in conn.spoken]


def _cartesia_spoken(fake: FakeCartesiaTTS) -> list[str]:
    return [text for conn in fake.connections for text in conn.transcripts.values()]


TTS_CASES: dict[str, TtsCase] = {
    "elevenlabs": TtsCase(
        lambda: FakeElevenLabs(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: ElevenLabsTTS(api_key=f.api_key, base_url=s.http_url),
        _texts,
        ("pcm16", 16000),
    ),
    "elevenlabs_for_twilio": TtsCase(
        lambda: FakeElevenLabs(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: ElevenLabsTTS.for_twilio(api_key=f.api_key, base_url=s.http_url),
        _texts,
        ("mulaw", 8000),
    ),
    "elevenlabs_ws": TtsCase(
        lambda: FakeElevenLabsWS(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: ElevenLabsWebSocketTTS(api_key=f.api_key, base_url=s.http_url),
        _ws_spoken,
        ("pcm16", 16000),
    ),
    "openai": TtsCase(
        lambda: FakeOpenAIAudio(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: OpenAITTS(api_key=f.api_key, base_url=s.http_url + "/v1"),
        _texts,
        ("pcm16", 24000),
    ),
    "cartesia": TtsCase(
        lambda: FakeCartesiaTTS(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: CartesiaTTS(api_key=f.api_key, base_url=s.http_url),
        _cartesia_spoken,
        ("pcm16", 16000),
    ),
    "cartesia_for_twilio": TtsCase(
        lambda: FakeCartesiaTTS(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: CartesiaTTS.for_twilio(api_key=f.api_key, base_url=s.http_url),
        _cartesia_spoken,
        ("mulaw", 8000),
    ),
    "rime": TtsCase(
        lambda: FakeRime(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: RimeTTS(api_key=f.api_key, base_url=s.http_url),
        _texts,
        ("pcm16", 16000),
    ),
    "lmnt": TtsCase(
        lambda: FakeLMNT(ms_per_char=TTS_MS_PER_CHAR),
        lambda f, s: LMNTTTS(api_key=f.api_key, base_url=s.http_url),
        _texts,
        ("pcm16", 16000),
    ),
}


@pytest.mark.parametrize("name", list(TTS_CASES))
async def test_tts_call(name: str) -> None:
    case = TTS_CASES[name]
    fake = case.make_fake()
    usage = Usage()
    async with running(fake.app) as srv:
        tts = case.make_tts(fake, srv)
        async with call_harness(
            utterances=["When are you open?"],
            replies=[TTS_REPLY],
            providers={"tts": tts},
            observers=[usage],
        ) as h:
            call = await run_call(h, turns=1)

    assert call.protocol_errors == []
    assert (tts.audio_format.encoding, tts.audio_format.sample_rate) == case.output
    assert case.texts(fake) == SENTENCES
    assert h.tts.texts == []  # the default TTS fake was not used
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": "When are you open?"},
        {"role": "assistant", "text": TTS_REPLY},
    ]
    # The caller heard every sentence at the fake's length: ms_per_char at 8 mu-law bytes per ms.
    heard = call.played_audio_mulaw()
    expected = sum(len(s) for s in SENTENCES) * TTS_MS_PER_CHAR * MULAW_BYTES_PER_MS
    assert abs(len(heard) - expected) <= MULAW_BYTES_PER_MS * len(SENTENCES), (len(heard), expected)
    # ... and it is still the fake's 440 Hz tone (a wrong rate shifts the pitch, a wrong codec is noise).
    assert abs(dominant_hz(heard) - TONE_HZ) < 15
    (tts_usage,) = usage.of("tts")
    assert tts_usage.characters == sum(len(s) for s in SENTENCES)
