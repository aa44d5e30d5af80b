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
from getpatter.stt.speechmatics import SpeechmaticsSTT
from getpatter.tts.cartesia import CartesiaTTS
from getpatter.tts.elevenlabs import ElevenLabsTTS
from getpatter.tts.elevenlabs_ws import ElevenLabsWebSocketTTS
from getpatter.tts.lmnt import LMNTTTS
from getpatter.tts.openai import OpenAITTS
from getpatter.tts.rime import RimeTTS


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
        SonioxSTT("k", audio_format="pcm_s16le"),
        SonioxSTT("k", sample_rate=16000),
        SonioxSTT.for_twilio("k"),
        SpeechmaticsSTT("k", encoding="pcm_s16le"),
        SpeechmaticsSTT("k", sample_rate=16000),
        SpeechmaticsSTT.for_twilio("k"),
    ):
        assert stt.format_pinned
        assert stt.for_wire(MULAW_8K) is stt and stt.for_wire(PCM16_16K) is stt
    for tts in (
        ElevenLabsTTS(api_key="k", output_format="pcm_16000"),
        ElevenLabsTTS.for_telnyx(api_key="k"),
        CartesiaTTS(api_key="k", encoding="pcm_s16le"),
        CartesiaTTS(api_key="k", sample_rate=16000),
        CartesiaTTS.for_telnyx(api_key="k"),
        RimeTTS(api_key="k", encoding="pcm"),
        RimeTTS(api_key="k", sample_rate=16000),
        RimeTTS.for_telnyx(api_key="k"),
        LMNTTTS(api_key="k", format="raw"),
        LMNTTTS(api_key="k", sample_rate=16000),
        LMNTTTS.for_telnyx(api_key="k"),
    ):
        assert tts.format_pinned
        assert tts.for_wire(MULAW_8K) is tts and tts.audio_format == PCM16_16K
    for twilio in (CartesiaTTS.for_twilio(api_key="k"), RimeTTS.for_twilio(api_key="k")):
        assert twilio.for_wire(PCM16_16K) is twilio and twilio.audio_format == MULAW_8K
    assert LMNTTTS.for_twilio(api_key="k").for_wire(PCM16_16K).output_format == "ulaw"


def test_soniox_and_speechmatics_take_the_carriers_format() -> None:
    soniox = SonioxSTT("k")
    assert not soniox.format_pinned and soniox.input_format == PCM16_16K
    twilio = soniox.for_wire(MULAW_8K)
    assert twilio is soniox.for_wire(MULAW_8K) and twilio.input_format == MULAW_8K
    assert (twilio.config()["audio_format"], twilio.config()["sample_rate"]) == ("mulaw", 8000)
    assert soniox.config()["audio_format"] == "pcm_s16le"  # the original is untouched
    assert soniox.for_wire(ALAW_8K).config()["audio_format"] == "alaw"
    assert soniox.for_wire(PCM16_16K) is soniox
    speechmatics = SpeechmaticsSTT("k")
    fmt = speechmatics.for_wire(MULAW_8K).start_message()["audio_format"]
    assert fmt == {"type": "raw", "encoding": "mulaw", "sample_rate": 8000}
    # Speechmatics has no A-law: the provider stays as it is and the call layer converts.
    assert speechmatics.for_wire(ALAW_8K) is speechmatics
    assert speechmatics.start_message()["audio_format"]["encoding"] == "pcm_s16le"


def test_cartesia_rime_and_lmnt_tts_produce_the_carriers_format() -> None:
    cartesia = CartesiaTTS(api_key="k")
    assert not cartesia.format_pinned and cartesia.audio_format == PCM16_16K
    twilio = cartesia.for_wire(MULAW_8K)
    assert twilio is cartesia.for_wire(MULAW_8K) and twilio.audio_format == MULAW_8K
    assert twilio.request("hi", "c")["output_format"] == {
        "container": "raw",
        "encoding": "pcm_mulaw",
        "sample_rate": 8000,
    }
    assert cartesia.request("hi", "c")["output_format"]["encoding"] == "pcm_s16le"
    assert cartesia.for_wire(ALAW_8K).output_format == "pcm_alaw"
    rime = RimeTTS(api_key="k")
    rime_twilio = rime.for_wire(MULAW_8K)
    assert (rime_twilio.encoding, rime_twilio.body("hi")["samplingRate"]) == ("mulaw", 8000)
    assert rime_twilio._http is rime._http  # one connection pool for every call
    assert rime.encoding == "pcm" and rime.for_wire(ALAW_8K) is rime
    lmnt = LMNTTTS(api_key="k")
    lmnt_twilio = lmnt.for_wire(MULAW_8K)
    assert (lmnt_twilio.body("hi")["format"], lmnt_twilio.body("hi")["sample_rate"]) == ("ulaw", 8000)
    assert lmnt_twilio.audio_format == MULAW_8K and lmnt.body("hi")["format"] == "raw"
    assert lmnt.for_wire(ALAW_8K) is lmnt


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
