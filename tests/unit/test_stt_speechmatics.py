"""SpeechmaticsSTT against the strict fake Speechmatics real-time server (real WebSocket on 127.0.0.1)."""

from __future__ import annotations

import contextlib

import pytest

from getpatter.audio.format import MULAW_8K, PCM16_16K
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from getpatter.stt import speechmatics
from getpatter.stt.base import Transcript
from getpatter.stt.speechmatics import SpeechmaticsSTT
from tests.fakes._segmenter import encode, silence, tone
from tests.fakes.speechmatics import FakeSpeechmatics
from tests.unit._stt_stream import drain, feed, finals, serve, until_final

KEY = "sm-test-key"


def test_config_defaults_and_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPEECHMATICS_API_KEY", raising=False)
    with pytest.raises(PatterConfigError, match="SPEECHMATICS_API_KEY") as info:
        SpeechmaticsSTT()
    assert "api_key" in str(info.value)
    for kwargs, name in [
        ({"turn_detection_mode": "smart"}, "turn_detection_mode"),
        ({"max_delay": 0.1}, "max_delay"),
        ({"encoding": "opus"}, "encoding"),
        ({"base_url": "nope"}, "base_url"),
    ]:
        with pytest.raises(PatterConfigError, match=name):
            SpeechmaticsSTT(KEY, **kwargs)
    monkeypatch.setenv("SPEECHMATICS_API_KEY", "sm-secret-env")
    stt = SpeechmaticsSTT()
    assert (stt.provider_id, stt.language, stt.turn_detection_mode, stt.input_format) == (
        "speechmatics",
        "en",
        "adaptive",
        PCM16_16K,
    )
    assert stt.url == "wss://eu2.rt.speechmatics.com/v2" and "secret" not in repr(stt)
    assert (
        not stt.needs_vad_end_of_turn
        and SpeechmaticsSTT(KEY, turn_detection_mode="external").needs_vad_end_of_turn
    )
    assert speechmatics.STT is SpeechmaticsSTT


async def test_start_recognition_field_by_field_and_end_of_stream() -> None:
    fake = FakeSpeechmatics(KEY)
    async with serve(fake) as url:
        stream = await SpeechmaticsSTT(KEY, base_url=url, enable_diarization=True).open()
        assert stream.session_id
        await feed(stream, silence(100))
        assert await drain(stream) == []
    (conn,) = fake.connections
    assert conn.headers["authorization"] == f"Bearer {KEY}"
    assert conn.start == {
        "message": "StartRecognition",
        "audio_format": {"type": "raw", "encoding": "pcm_s16le", "sample_rate": 16000},
        "transcription_config": {
            "language": "en",
            "enable_partials": True,
            "max_delay": 1.0,
            "operating_point": "enhanced",
            "max_delay_mode": "flexible",
            "conversation_config": {"end_of_utterance_silence_trigger": 0.5},
            "diarization": "speaker",
        },
    }
    assert conn.controls == [{"message": "EndOfStream", "last_seq_no": conn.frames}]
    assert stream.acked_seq_no == conn.frames and conn.close_code == 1000


async def test_partials_and_end_of_utterance_give_one_final_per_turn() -> None:
    fake = FakeSpeechmatics(KEY, ["book a room", "for two nights"])
    audio = tone(400) + silence(600) + tone(300) + silence(600)
    async with serve(fake) as url:
        stream = await SpeechmaticsSTT(KEY, base_url=url).open()
        await feed(stream, audio)
        events = await drain(stream)
    assert finals(events) == [
        Transcript("book a room", True, True, 0.75),
        Transcript("for two nights", True, True, 0.75),
    ]
    interims = [e.text for e in events if isinstance(e, Transcript) and not e.is_final]
    assert interims[:3] == ["book", "book a", "book a room"]
    conn = fake.connections[0]
    assert len(conn.sent_of("EndOfUtterance")) == 2 and bytes(conn.audio) == audio
    assert stream.audio_seconds == pytest.approx(1.9)


async def test_external_mode_finalize_forces_end_of_utterance_with_mulaw() -> None:
    fake = FakeSpeechmatics(KEY, ["cancel my order"])
    audio = encode("mulaw", tone(400, 8000))
    async with serve(fake) as url:
        stt = SpeechmaticsSTT(
            KEY, base_url=url, turn_detection_mode="external", encoding="mulaw", sample_rate=8000
        )
        assert stt.input_format == MULAW_8K
        stream = await stt.open()
        await feed(stream, audio, step=160)
        await stream.finalize()
        assert finals(await until_final(stream)) == [Transcript("cancel my order", True, True, 0.75)]
        await drain(stream)
    conn = fake.connections[0]
    assert conn.start is not None and "conversation_config" not in conn.start["transcription_config"]
    assert conn.controls[0] == {"message": "ForceEndOfUtterance"}


async def test_auth_failures_http_and_error_message() -> None:
    fake = FakeSpeechmatics(KEY)
    async with serve(fake) as url:
        with pytest.raises(AuthenticationError) as info:
            await SpeechmaticsSTT("sm-wrong-secret", base_url=url).open()
        assert "401" in str(info.value) and "wrong-secret" not in str(info.value)
        fake.auth_error = True
        with pytest.raises(AuthenticationError, match="not_authorised"):
            await SpeechmaticsSTT(KEY, base_url=url).open()
        fake.auth_error, fake.reject_status = False, 429
        with pytest.raises(RateLimitError):
            await SpeechmaticsSTT(KEY, base_url=url).open()


async def test_drop_and_error_end_the_stream() -> None:
    fake = FakeSpeechmatics(KEY, ["x"], drop_after_seconds=0.2)
    async with serve(fake) as url:
        stream = await SpeechmaticsSTT(KEY, base_url=url).open()
        await feed(stream, tone(300))
        with pytest.raises(PatterConnectionError, match="unexpectedly"):
            await until_final(stream)
        with pytest.raises(PatterConnectionError):
            await stream.finalize()
        await stream.close()
        fake.drop_after_seconds, fake.error_after_seconds = None, 0.1
        stream = await SpeechmaticsSTT(KEY, base_url=url).open()
        with contextlib.suppress(PatterConnectionError):
            await feed(stream, silence(300))
        with pytest.raises(PatterConnectionError, match="Injected failure"):
            await until_final(stream)
        await stream.close()
