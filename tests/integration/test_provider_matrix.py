"""Issue 9: one whole pipeline call per STT, per TTS and per LLM (the others held at the default fakes).

Every call runs through the real server with the fake Twilio carrier; only the provider under test is
swapped (``call_harness(providers=...)``) for its real client pointed at its strict fake on 127.0.0.1.

* STT: two turns; the exact transcript, and the fake received audio in the format the client declared
  (its handshake/config says so, and the byte count matches the call's audio time at that format).
* TTS: one turn; the fake synthesized exactly the sentences, and the caller heard a 440 Hz tone of the
  fake's ``ms_per_char`` length (a format mix-up changes the length or the pitch, or garbles frames).
* LLM: one turn with a ``@tool`` round trip; the exact transcript, and ``UsageRecorded`` carries the
  token counts the fake reported for each of the two requests.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from getpatter.audio.format import MULAW_8K
from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext
from getpatter.call.events import UsageRecorded
from getpatter.llm.anthropic import AnthropicLLM
from getpatter.llm.cerebras import CerebrasLLM
from getpatter.llm.fallback import FallbackLLM
from getpatter.llm.google import GoogleLLM
from getpatter.llm.groq import GroqLLM
from getpatter.llm.openai import OpenAICompatibleLLM, OpenAILLM
from getpatter.stt.assemblyai import AssemblyAISTT
from getpatter.stt.cartesia import CartesiaSTT
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.stt.openai_transcribe import OpenAITranscribeSTT
from getpatter.stt.soniox import SonioxSTT
from getpatter.stt.speechmatics import SpeechmaticsSTT
from getpatter.stt.whisper import WhisperSTT
from getpatter.tools import tool
from getpatter.tts.cartesia import CartesiaTTS
from getpatter.tts.elevenlabs import ElevenLabsTTS
from getpatter.tts.elevenlabs_ws import ElevenLabsWebSocketTTS
from getpatter.tts.lmnt import LMNTTTS
from getpatter.tts.openai import OpenAITTS
from getpatter.tts.rime import RimeTTS
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes.assemblyai import FakeAssemblyAI
from tests.fakes.cartesia_stt import FakeCartesiaSTT
from tests.fakes.cartesia_tts import FakeCartesiaTTS
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.elevenlabs_ws import FakeElevenLabsWS
from tests.fakes.lmnt import FakeLMNT
from tests.fakes.openai_audio import TONE_HZ, FakeOpenAIAudio
from tests.fakes.openai_chat import FakeOpenAIChat, Reply
from tests.fakes.openai_transcribe import FakeOpenAITranscribe
from tests.fakes.rime import FakeRime
from tests.fakes.server import Running, running
from tests.fakes.soniox import FakeSoniox
from tests.fakes.speechmatics import FakeSpeechmatics
from tests.fakes.twilio import FakeCall
from tests.integration.harness import Harness, call_harness
from tests.unit.test_llm_cerebras import CerebrasGate
from tests.unit.test_llm_groq import GroqGate

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


async def _turn(call: FakeCall) -> None:
    await call.say_tone(TONE_MS)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=SETTLE_MS, timeout=15)


async def _run_call(h: Harness, turns: int) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)  # the greeting
    await call.wait_agent_quiet(quiet_ms=SETTLE_MS, timeout=10)
    for _ in range(turns):
        await _turn(call)
    await call.hangup()
    await h.wait_ended()
    return call


def _dominant_hz(mulaw_8k: bytes) -> float:
    pcm = np.frombuffer(audioop.ulaw2lin(mulaw_8k, 2), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.fft.rfftfreq(len(pcm), 1 / 8000)[int(np.argmax(spectrum))])


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
            call = await _run_call(h, turns=2)

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
            call = await _run_call(h, turns=1)

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
    assert abs(_dominant_hz(heard) - TONE_HZ) < 15
    (tts_usage,) = usage.of("tts")
    assert tts_usage.characters == sum(len(s) for s in SENTENCES)


# ------------------------------------------------------------------------------------------------ LLM

LLM_UTTERANCE = "Are you open on Monday?"
LLM_ANSWER = "Yes, from nine to five on Monday."
TOOL_ARGS = {"day": "Monday"}
#: (input, output) tokens the fake reports for the tool-call request, then for the answer.
LLM_USAGE = [(41, 9), (63, 11)]


@dataclass(frozen=True)
class LlmCase:
    #: Yields (llm, the fake of the answering vendor); servers live for the call.
    serve: Callable[[], contextlib.AbstractAsyncContextManager[tuple[Any, Any]]]
    #: ``provider_id`` the usage must be recorded under.
    provider: str


def _openai_replies() -> list[Reply]:
    return [
        Reply(tool_calls=[("opening_hours", json.dumps(TOOL_ARGS))], usage=LLM_USAGE[0]),
        Reply(text=LLM_ANSWER, usage=LLM_USAGE[1]),
    ]


def _anthropic_replies() -> list[fake_anthropic.Reply]:
    return [
        fake_anthropic.Reply(tool_calls=[("opening_hours", json.dumps(TOOL_ARGS))], usage=LLM_USAGE[0]),
        fake_anthropic.Reply(text=LLM_ANSWER, usage=LLM_USAGE[1]),
    ]


def _gemini_replies() -> list[fake_gemini.Reply]:
    return [
        fake_gemini.Reply(tool_calls=[("opening_hours", dict(TOOL_ARGS))], usage=LLM_USAGE[0]),
        fake_gemini.Reply(text=LLM_ANSWER, usage=LLM_USAGE[1]),
    ]


@contextlib.asynccontextmanager
async def _openai() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="sk-matrix", replies=_openai_replies())
    async with running(fake.app) as srv:
        yield OpenAILLM(api_key=fake.api_key, base_url=srv.http_url + "/v1"), fake


@contextlib.asynccontextmanager
async def _compatible() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="local-key", replies=_openai_replies())
    async with running(fake.app) as srv:
        yield OpenAICompatibleLLM(srv.http_url + "/v1", api_key=fake.api_key, model="llama3.1"), fake


@contextlib.asynccontextmanager
async def _groq() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="gsk_matrix", replies=_openai_replies())
    async with running(GroqGate(fake)) as srv:
        yield GroqLLM(api_key=fake.api_key, base_url=srv.http_url + "/openai/v1"), fake


@contextlib.asynccontextmanager
async def _cerebras() -> AsyncIterator[tuple[Any, Any]]:
    fake = FakeOpenAIChat(api_key="csk-matrix", replies=_openai_replies())
    async with running(CerebrasGate(fake)) as srv:
        yield CerebrasLLM(api_key=fake.api_key, base_url=srv.http_url + "/v1"), fake


@contextlib.asynccontextmanager
async def _anthropic() -> AsyncIterator[tuple[Any, Any]]:
    fake = fake_anthropic.FakeAnthropic(replies=_anthropic_replies())
    async with running(fake.app) as srv:
        yield AnthropicLLM(api_key=fake.api_key, base_url=srv.http_url), fake


@contextlib.asynccontextmanager
async def _google() -> AsyncIterator[tuple[Any, Any]]:
    fake = fake_gemini.FakeGemini(replies=_gemini_replies())
    async with running(fake.app) as srv:
        yield GoogleLLM(api_key=fake.api_key, base_url=srv.http_url + "/v1beta"), fake


@contextlib.asynccontextmanager
async def _fallback() -> AsyncIterator[tuple[Any, Any]]:
    down = FakeOpenAIChat(api_key="sk-down", replies=lambda body: Reply(status=500))
    async with running(down.app) as down_srv, _anthropic() as (anthropic, fake):
        primary = OpenAILLM(api_key=down.api_key, base_url=down_srv.http_url + "/v1")
        yield FallbackLLM([primary, anthropic]), fake
    assert down.requests, "the failing primary was never tried"


LLM_CASES: dict[str, LlmCase] = {
    "openai": LlmCase(_openai, "openai"),
    "openai_compatible": LlmCase(_compatible, "openai_compatible"),
    "anthropic": LlmCase(_anthropic, "anthropic"),
    "groq": LlmCase(_groq, "groq"),
    "cerebras": LlmCase(_cerebras, "cerebras"),
    "google": LlmCase(_google, "google"),
    "fallback": LlmCase(_fallback, "anthropic"),
}


@pytest.mark.parametrize("name", list(LLM_CASES))
async def test_llm_call_with_tool_round_trip(name: str) -> None:
    case = LLM_CASES[name]
    calls: list[str] = []

    @tool
    def opening_hours(day: str) -> dict[str, str]:
        """Opening hours for one day of the week.

        Args:
            day: The day, e.g. Monday.
        """
        calls.append(day)
        return {"day": day, "hours": "9-17"}

    usage = Usage()
    async with case.serve() as (llm, fake):
        async with call_harness(
            utterances=[LLM_UTTERANCE],
            ms_per_char=5,
            providers={"llm": llm},
            agent_kwargs={"tools": [opening_hours]},
            observers=[usage],
        ) as h:
            call = await _run_call(h, turns=1)
        await llm.close()

    assert call.protocol_errors == []
    assert calls == ["Monday"]
    assert len(fake.requests) == 2  # the tool call, then the answer with the tool result
    assert "9-17" not in json.dumps(fake.requests[0]) and "9-17" in json.dumps(fake.requests[1])
    assert h.llm.requests == []  # the default LLM fake was not used
    assert h.ended[0]["transcript"] == [
        {"role": "assistant", "text": GREETING},
        {"role": "user", "text": LLM_UTTERANCE},
        {"role": "assistant", "text": LLM_ANSWER},
    ]
    recorded = usage.of("llm")
    assert [(u.provider, u.input_tokens, u.output_tokens) for u in recorded] == [
        (case.provider, *tokens) for tokens in LLM_USAGE
    ]
