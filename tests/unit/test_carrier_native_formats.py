"""``for_wire``: a provider whose format is unset takes the carrier's; a pinned one keeps its own.

The calls themselves (what each fake vendor was asked under Twilio / Telnyx / pinned) are in
``tests/integration/test_carrier_native.py`` and ``test_provider_matrix.py``; here: which variant is
chosen, that it is made once and shared, and that the original is left as the user built it.
"""

from __future__ import annotations

from getpatter.audio.format import ALAW_8K, MULAW_8K, PCM16_16K, AudioFormat
from getpatter.stt.assemblyai import AssemblyAISTT
from getpatter.stt.cartesia import CartesiaSTT
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.stt.soniox import SonioxSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from getpatter.tts.elevenlabs_ws import ElevenLabsWebSocketTTS
from getpatter.tts.openai import OpenAITTS


def test_deepgram_unset_format_follows_the_wire_and_the_variant_is_shared() -> None:
    stt = DeepgramSTT("k")
    assert not stt.format_pinned and stt.input_format == PCM16_16K  # on its own: linear16 16 kHz
    twilio = stt.for_wire(MULAW_8K)
    assert twilio is not stt and twilio is stt.for_wire(MULAW_8K)  # made once, shared by every call
    assert twilio.input_format == MULAW_8K and twilio.format_pinned
    assert ("encoding", "mulaw") in twilio.query_params() and ("sample_rate", "8000") in twilio.query_params()
    assert stt.for_wire(PCM16_16K) is stt  # Telnyx L16: already its format
    assert ("encoding", "linear16") in stt.query_params()  # the original is untouched
    assert stt.for_wire(ALAW_8K).query_params()[2:4] == [("encoding", "alaw"), ("sample_rate", "8000")]


def test_pinned_formats_are_kept_whatever_the_wire() -> None:
    for stt in (
        DeepgramSTT("k", encoding="linear16"),
        DeepgramSTT("k", sample_rate=16000),
        DeepgramSTT.for_twilio("k"),
        AssemblyAISTT("k", encoding="pcm_s16le", sample_rate=16000),
        CartesiaSTT("k", sample_rate=16000),
    ):
        assert stt.format_pinned
        assert stt.for_wire(MULAW_8K) is stt and stt.for_wire(PCM16_16K) is stt
    for tts in (ElevenLabsTTS(api_key="k", output_format="pcm_16000"), ElevenLabsTTS.for_telnyx(api_key="k")):
        assert tts.for_wire(MULAW_8K) is tts and tts.output_format == "pcm_16000"


def test_assemblyai_and_cartesia_take_mulaw_on_twilio() -> None:
    aai = AssemblyAISTT("k").for_wire(MULAW_8K)
    assert aai.input_format == MULAW_8K
    assert ("encoding", "pcm_mulaw") in aai.query_params() and ("sample_rate", "8000") in aai.query_params()
    cartesia = CartesiaSTT("k").for_wire(MULAW_8K)
    assert ("encoding", "pcm_mulaw") in cartesia.query_params()
    # AssemblyAI has no A-law: the provider stays as it is and the call layer converts.
    aai_default = AssemblyAISTT("k")
    assert aai_default.for_wire(ALAW_8K) is aai_default


def test_elevenlabs_unset_format_returns_the_carriers_and_shares_the_pool() -> None:
    tts = ElevenLabsTTS(api_key="k")
    assert not tts.format_pinned and tts.output_format == "pcm_16000"
    twilio = tts.for_wire(MULAW_8K)
    assert twilio.output_format == "ulaw_8000" and twilio.audio_format == MULAW_8K
    assert twilio._params()["output_format"] == "ulaw_8000" and tts._params()["output_format"] == "pcm_16000"
    assert twilio._http is tts._http  # one connection pool for every call
    assert tts.for_wire(AudioFormat("pcm16", 16000)) is tts
    ws = ElevenLabsWebSocketTTS(api_key="k").for_wire(MULAW_8K)
    assert ("output_format", "ulaw_8000") in ws.query_params()


def test_vendors_without_the_carriers_format_are_left_alone() -> None:
    openai_tts = OpenAITTS(api_key="k")  # PCM 24 kHz only
    assert openai_tts.for_wire(MULAW_8K) is openai_tts
    soniox = SonioxSTT("k")  # mu-law support unverified: not asked for
    assert soniox.for_wire(MULAW_8K) is soniox
