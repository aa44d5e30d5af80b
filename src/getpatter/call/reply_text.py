"""Reply text between the LLM and TTS: the ``after_llm`` hooks, text transforms and guardrails.

Two stages, because the hooks run at two different places (API.md A.17):

* :class:`ReplyAssembler` sees the reply as it streams: ``after_llm.on_chunk`` on every delta (sync, before
  sentence splitting), then the sentence chunker. With ``after_llm.on_response`` set it holds the whole
  reply, hands it to the hook once, and only then splits it: that hook trades streaming for a last word.
* :class:`SentenceShaper` sees each sentence just before it is spoken: ``after_llm.on_sentence`` (async;
  ``""`` drops it), then ``text_transforms``, then guardrails. A blocked sentence is replaced and ends the
  reply (:attr:`Spoken.final`).

Only LLM (or ``on_message``) text goes through the ``after_llm`` hooks; the first message and the LLM-error
apology are not LLM output, but transforms and guardrails apply to everything the agent says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from getpatter.call.hooks import HookRunner
from getpatter.guardrails import Guardrail, first_blocking
from getpatter.text.chunker import SentenceChunker
from getpatter.text.transforms import apply_transforms

#: A sentence on its way to TTS, and whether it came from the LLM (so the after_llm hooks apply).
Sentence = tuple[str, bool]


@dataclass(frozen=True, slots=True)
class Spoken:
    """What to say for one sentence. ``final``: a guardrail blocked it; say this and drop the rest."""

    text: str
    final: bool = False


class ReplyAssembler:
    """LLM deltas in, sentences out (through ``put``), applying ``on_chunk`` and ``on_response``."""

    __slots__ = ("_chunk_hook", "_chunker", "_hooks", "_parts", "_put", "_whole")

    def __init__(self, hooks: HookRunner, chunker: SentenceChunker, put: Callable[[Sentence], None]) -> None:
        self._hooks = hooks
        self._chunker = chunker
        self._put = put
        self._chunk_hook = hooks.is_set("on_chunk")
        self._whole = hooks.is_set("on_response")
        self._parts: list[str] = []

    def fixed(self, text: str) -> None:
        """Text that is not LLM output (first message, apology): split and pass on, no after_llm hooks."""
        self._emit(self._chunker.push(text), from_llm=False)

    def fixed_flush(self) -> None:
        """End of non-LLM text."""
        self._emit(self._chunker.flush(), from_llm=False)

    def feed(self, delta: str) -> None:
        """One LLM text delta."""
        if self._chunk_hook:
            delta = self._hooks.on_chunk(delta)
        if self._whole:
            self._parts.append(delta)
        else:
            self._emit(self._chunker.push(delta), from_llm=True)

    async def finish(self) -> None:
        """End of the LLM's reply: run ``on_response`` on the whole of it (when set), flush the chunker."""
        if self._whole and self._parts:
            whole = "".join(self._parts)
            self._parts.clear()
            self._emit(self._chunker.push(await self._hooks.on_response(whole)), from_llm=True)
        self._emit(self._chunker.flush(), from_llm=True)

    def _emit(self, sentences: list[str], *, from_llm: bool) -> None:
        for sentence in sentences:
            self._put((sentence, from_llm))


class SentenceShaper:
    """One sentence in, what TTS should say out (or ``None``: nothing for this one)."""

    __slots__ = ("_guardrails", "_hooks", "_on_sentence", "_transforms")

    def __init__(
        self,
        hooks: HookRunner,
        transforms: Sequence[Callable[[str], str]] = (),
        guardrails: Sequence[Guardrail] = (),
    ) -> None:
        self._hooks = hooks
        self._on_sentence = hooks.is_set("on_sentence")
        self._transforms = tuple(transforms)
        self._guardrails = tuple(guardrails)

    async def shape(self, sentence: str, from_llm: bool) -> Spoken | None:
        if from_llm and self._on_sentence:
            hooked = await self._hooks.on_sentence(sentence)
            if hooked is None:
                return None  # the hook dropped it
            sentence = hooked
        if self._transforms:
            sentence = apply_transforms(sentence, self._transforms)
        if not sentence.strip():
            return None
        rail = first_blocking(sentence, self._guardrails) if self._guardrails else None
        if rail is not None:
            return Spoken(rail.replacement, final=True)
        return Spoken(sentence)
