"""PiperTTS speaks words that Whisper can understand, offline."""

import pytest

pytest.importorskip("piper", reason="needs the 'piper' extra")
pytest.importorskip("faster_whisper", reason="needs the 'local' extra")


async def test_piper_speech_is_understood_by_the_local_stt() -> None:
    from getpatter.audio.convert import FormatConverter
    from getpatter.audio.format import PCM16_16K
    from getpatter.local import LocalSTT
    from getpatter.local.piper import PiperTTS

    tts = PiperTTS()
    assert tts.audio_format.sample_rate == 22050
    audio = b"".join([chunk async for chunk in tts.synthesize("Please book an appointment for Monday.")])
    assert len(audio) / 2 / 22050 > 1.0  # more than a second of speech
    converter = FormatConverter(tts.audio_format, PCM16_16K)
    pcm16k = converter.process(audio) + converter.flush()
    text = LocalSTT().transcribe(pcm16k).lower()
    assert "appointment" in text and "monday" in text
