"""Whisper over a window just long enough for one caller turn, instead of the fixed 30 s.

faster-whisper pads every utterance to Whisper's 30 s training window, and the encoder pass over those
3000 mel frames is almost all of a decode: about 1 s of CPU on two cores, for a 3 s turn. The encoder's
cost grows faster than linearly with its input, so a 10 s window costs about a tenth of that, and Whisper
tiny.en transcribes a phone turn padded to 10 s exactly as it does padded to 30 s (see
``benchmarks/RESULTS.md``, "Offline demo turn"). Shorter windows are not safe: below about 8 s the
decoder stops seeing the end of the audio and repeats the sentence until it runs out of tokens.

:func:`decode_window` is the fast path. It returns None whenever the answer looks unreliable (a
repetition loop, the token budget exhausted, audio too long for the window), and the caller then runs the
ordinary full-window transcription, so the short window never makes a turn worse than before, only slower.
"""

from __future__ import annotations

import zlib
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from getpatter.local._deps import require

SAMPLE_RATE: Final = 16000
#: Silence kept after the caller's last word inside the window, so the decoder sees the speech end.
_TAIL_S: Final = 0.5
#: A text that compresses better than this is a loop ("Yes. Yes. Yes. ..."); faster-whisper's threshold.
_MAX_COMPRESSION: Final = 2.4
#: Whisper's skip rule: likely no speech, and not confidently transcribed either.
_NO_SPEECH: Final = 0.6
_LOW_LOGPROB: Final = -1.0
#: Token budget: a fast talker says about 4 tokens a second; loops hit the budget and fall back.
_BASE_TOKENS: Final = 24
_TOKENS_PER_S: Final = 8


def decode_window(
    model: Any, audio: NDArray[np.float32], *, window_s: float, language: str, beam_size: int
) -> str | None:
    """Transcribe ``audio`` (float32 16 kHz mono) with ``model`` (a ``faster_whisper.WhisperModel``) over a
    ``window_s`` window; None when the full-window transcription should be used instead."""
    seconds = len(audio) / SAMPLE_RATE
    if seconds + _TAIL_S > window_s:
        return None
    padded = np.zeros(int(window_s * SAMPLE_RATE), dtype=np.float32)
    padded[: len(audio)] = audio
    features = model.feature_extractor(padded)[:, :-1]  # the extractor adds one frame past the end
    ct2 = _ctranslate2()
    tokenizer = _tokenizer(model, language)
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    budget = _BASE_TOKENS + int(_TOKENS_PER_S * seconds)
    result = model.model.generate(
        ct2.StorageView.from_array(np.ascontiguousarray(features[None])),
        [prompt],
        beam_size=beam_size,
        max_length=budget + len(prompt),
        suppress_blank=True,
        suppress_tokens=_suppressed(tokenizer),
        return_scores=True,
        return_no_speech_prob=True,
    )[0]
    tokens: list[int] = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    if len(tokens) >= budget:
        return None  # ran out of tokens: a loop, or a turn too dense for the budget
    text: str = tokenizer.decode(tokens).strip()
    avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > _NO_SPEECH and avg_logprob < _LOW_LOGPROB:
        return ""
    if text and _compression_ratio(text) > _MAX_COMPRESSION:
        return None
    return text


def _compression_ratio(text: str) -> float:
    raw = text.encode()
    return len(raw) / len(zlib.compress(raw))


def _ctranslate2() -> Any:
    return require("ctranslate2", "faster-whisper")  # installed with faster-whisper


_tokenizers: dict[tuple[int, str], Any] = {}


def _tokenizer(model: Any, language: str) -> Any:
    key = (id(model), language)
    if key not in _tokenizers:
        Tokenizer = require("faster_whisper.tokenizer", "faster-whisper").Tokenizer
        multilingual = bool(model.model.is_multilingual)
        _tokenizers[key] = Tokenizer(
            model.hf_tokenizer, multilingual, task="transcribe", language=language if multilingual else None
        )
    return _tokenizers[key]


def _suppressed(tokenizer: Any) -> list[int]:
    """The tokens faster-whisper suppresses by default: non-speech symbols and the task tokens."""
    task = [tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev, tokenizer.sot_lm]
    return sorted(t for t in {*tokenizer.non_speech_tokens, *task, tokenizer.no_speech} if t is not None)
