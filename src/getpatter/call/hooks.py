"""Pipeline hooks: user callables at each stage of the STT -> LLM -> TTS pipeline (API.md A.17).

:class:`PipelineHooks` is the user-facing config; :class:`HookRunner` is what the pipeline calls. The
runner owns every rule of the contract so the pipeline does not re-implement them:

* hooks may be sync or async; each receives ``(value, ctx)`` or just ``(value)``, decided once from its
  signature;
* fail-open: a hook that raises (or returns the wrong type) is logged with its name and the original
  value passes through;
* the meaning of ``None`` differs per hook (drop / skip / keep); each runner method documents what it
  returns, and an unset hook is a no-op fast path.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from getpatter.errors import PatterConfigError

__all__ = [
    "AfterLLMHooks",
    "HookContext",
    "HookName",
    "HookRunner",
    "PatterDeprecationWarning",
    "PipelineHooks",
]

logger = logging.getLogger(__name__)

HookFn = Callable[..., Any]
"""A sync or async callable; see each hook for its arguments and return value."""

HookName = Literal[
    "before_send_to_stt",
    "after_transcribe",
    "before_llm",
    "on_chunk",
    "on_sentence",
    "on_response",
    "before_synthesize",
    "after_synthesize",
]

_AFTER_LLM_KEYS: Final = frozenset({"on_chunk", "on_sentence", "on_response"})
#: Audio-stage aliases the docs use -> the hook each one sets.
HOOK_ALIASES: Final = {
    "before_stt": "before_send_to_stt",
    "after_stt": "after_transcribe",
    "before_tts": "before_synthesize",
    "after_tts": "after_synthesize",
}
_legacy_after_llm_warned = False


class PatterDeprecationWarning(DeprecationWarning):
    """A getpatter feature still works but is scheduled for removal; the message says what to use."""


@dataclass(frozen=True, slots=True)
class HookContext:
    """What a hook knows about the call it runs in. ``history`` is the conversation so far, oldest first."""

    call_id: str
    caller: str
    callee: str
    history: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class AfterLLMHooks:
    """The three tiers of ``after_llm``.

    * ``on_chunk(chunk) -> str``: sync, every LLM token, before sentence splitting; must be cheap.
    * ``on_sentence(sentence, ctx) -> str | None``: each sentence; ``None`` keeps it, ``""`` drops it,
      any other string replaces it.
    * ``on_response(text, ctx) -> str | None``: once with the whole reply; ``None`` keeps it. Setting it
      makes the pipeline wait for the full reply before speaking.
    """

    on_chunk: HookFn | None = None
    on_sentence: HookFn | None = None
    on_response: HookFn | None = None

    def __post_init__(self) -> None:
        for name in ("on_chunk", "on_sentence", "on_response"):
            _check_callable(f"after_llm.{name}", getattr(self, name))


def _check_callable(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise PatterConfigError(
            f"PipelineHooks: {name} must be a callable or None, got {type(value).__name__}"
        )


def normalize_after_llm(value: object) -> AfterLLMHooks | None:
    """Accept ``AfterLLMHooks``, a dict with its keys, or a bare callable (legacy ``on_response``)."""
    global _legacy_after_llm_warned
    if value is None or isinstance(value, AfterLLMHooks):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in _AFTER_LLM_KEYS)
        if unknown:
            raise PatterConfigError(
                f"PipelineHooks: after_llm has unknown key(s) {unknown}; "
                "use on_chunk, on_sentence and/or on_response"
            )
        return AfterLLMHooks(**value)
    if callable(value):
        if not _legacy_after_llm_warned:
            _legacy_after_llm_warned = True
            warnings.warn(
                "PipelineHooks(after_llm=<callable>) is deprecated and will be removed in 0.7.0; "
                "use after_llm=AfterLLMHooks(on_response=...) or after_llm={'on_response': ...}",
                PatterDeprecationWarning,
                stacklevel=4,
            )
        return AfterLLMHooks(on_response=value)
    raise PatterConfigError(
        "PipelineHooks: after_llm must be an AfterLLMHooks, a dict with on_chunk/on_sentence/on_response, "
        f"or a callable; got {type(value).__name__}"
    )


@dataclass(frozen=True, slots=True)
class PipelineHooks:
    """User hooks for pipeline mode; every field is optional and may be sync or async.

    ==================== ======================================= =====================================
    hook                 called with                             return
    ==================== ======================================= =====================================
    before_send_to_stt   raw PCM16 chunk, ctx                    bytes to send, or ``None`` to drop it
    after_transcribe     final transcript, ctx                   text, or ``None`` to skip the turn
    before_llm           messages list, ctx                      new list, or ``None`` to keep
    after_llm            see :class:`AfterLLMHooks`              (a dict or bare callable also works)
    before_synthesize    sentence, ctx                           text, or ``None`` to skip its TTS
    after_synthesize     audio chunk, ctx                        bytes, or ``None`` to discard it
    ==================== ======================================= =====================================

    ``after_llm`` is normalized to :class:`AfterLLMHooks` at construction; the bare-callable form warns
    once with :class:`PatterDeprecationWarning`.

    Aliases (keyword only): ``before_stt`` = ``before_send_to_stt``, ``after_stt`` = ``after_transcribe``,
    ``before_tts`` = ``before_synthesize``, ``after_tts`` = ``after_synthesize``. An alias sets the hook it
    names (both attributes then read the same function); giving both names for one hook is an error.
    """

    before_send_to_stt: HookFn | None = None
    after_transcribe: HookFn | None = None
    before_llm: HookFn | None = None
    after_llm: AfterLLMHooks | Mapping[str, HookFn | None] | HookFn | None = field(default=None)
    before_synthesize: HookFn | None = None
    after_synthesize: HookFn | None = None
    before_stt: HookFn | None = field(default=None, kw_only=True)
    after_stt: HookFn | None = field(default=None, kw_only=True)
    before_tts: HookFn | None = field(default=None, kw_only=True)
    after_tts: HookFn | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        for alias, name in HOOK_ALIASES.items():
            alias_fn, fn = getattr(self, alias), getattr(self, name)
            if alias_fn is None:
                object.__setattr__(self, alias, fn)
            elif fn is None or fn is alias_fn:
                object.__setattr__(self, name, alias_fn)
            else:
                raise PatterConfigError(
                    f"PipelineHooks: {alias} is another name for {name}; pass only one of them"
                )
        for name in (
            "before_send_to_stt",
            "after_transcribe",
            "before_llm",
            "before_synthesize",
            "after_synthesize",
        ):
            _check_callable(name, getattr(self, name))
        object.__setattr__(self, "after_llm", normalize_after_llm(self.after_llm))


def _wants_ctx(fn: HookFn) -> bool:
    """Whether ``fn`` takes a second positional argument (the :class:`HookContext`)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True  # builtins without a signature: follow the documented (value, ctx) contract
    positional = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


class _Hook:
    """One user hook, with its argument style resolved once."""

    __slots__ = ("fn", "name", "wants_ctx")

    def __init__(self, name: HookName, fn: HookFn) -> None:
        self.name = name
        self.fn = fn
        self.wants_ctx = _wants_ctx(fn)


_Outcome = tuple[bool, Any]  # (ok, value); ok=False means the hook failed and was logged


class HookRunner:
    """Calls a call's :class:`PipelineHooks` with its :class:`HookContext`, applying the A.17 rules.

    ``ctx`` is a plain attribute: the pipeline replaces it (e.g. with an updated ``history``) as the call
    goes on. Use :meth:`is_set` to skip work entirely on hot paths, e.g. buffering the whole reply only
    when ``on_response`` is set.
    """

    __slots__ = ("_hooks", "ctx")

    def __init__(self, hooks: PipelineHooks | None, ctx: HookContext) -> None:
        self.ctx = ctx
        self._hooks: dict[str, _Hook] = {}
        if hooks is None:
            return
        after_llm = normalize_after_llm(hooks.after_llm)
        candidates: list[tuple[HookName, HookFn | None]] = [
            ("before_send_to_stt", hooks.before_send_to_stt),
            ("after_transcribe", hooks.after_transcribe),
            ("before_llm", hooks.before_llm),
            ("before_synthesize", hooks.before_synthesize),
            ("after_synthesize", hooks.after_synthesize),
        ]
        if after_llm is not None:
            candidates += [
                ("on_chunk", after_llm.on_chunk),
                ("on_sentence", after_llm.on_sentence),
                ("on_response", after_llm.on_response),
            ]
        for name, fn in candidates:
            if fn is not None:
                self._hooks[name] = _Hook(name, fn)

    def is_set(self, name: HookName) -> bool:
        return name in self._hooks

    # -- audio ----------------------------------------------------------------------------------------

    async def before_send_to_stt(self, chunk: bytes) -> bytes | None:
        """Audio on its way to STT. Returns the bytes to send, or ``None``: drop this chunk."""
        hook = self._hooks.get("before_send_to_stt")
        if hook is None:
            return chunk
        return await self._run_bytes(hook, chunk)

    async def after_synthesize(self, chunk: bytes) -> bytes | None:
        """TTS audio on its way to the caller. Returns the bytes to play, or ``None``: discard it."""
        hook = self._hooks.get("after_synthesize")
        if hook is None:
            return chunk
        return await self._run_bytes(hook, chunk)

    # -- text -----------------------------------------------------------------------------------------

    async def after_transcribe(self, text: str) -> str | None:
        """Final transcript. Returns the text to answer, or ``None``: skip this turn."""
        hook = self._hooks.get("after_transcribe")
        if hook is None:
            return text
        return await self._run_optional_str(hook, text)

    async def before_llm(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages about to be sent to the LLM. Always returns a list: the hook's, or the original when
        the hook returned ``None`` (it may have edited the list in place), failed, or returned a non-list."""
        hook = self._hooks.get("before_llm")
        if hook is None:
            return messages
        ok, result = await self._call(hook, messages)
        if not ok or result is None:
            return messages
        if isinstance(result, list):
            return result
        self._bad_type(hook, result, "a list or None")
        return messages

    def on_chunk(self, chunk: str) -> str:
        """``after_llm.on_chunk``: sync, per LLM token. Returns the token text to use."""
        hook = self._hooks.get("on_chunk")
        if hook is None:
            return chunk
        try:
            result = hook.fn(chunk, self.ctx) if hook.wants_ctx else hook.fn(chunk)
        except Exception:
            logger.exception(
                "pipeline hook after_llm.on_chunk (%s) raised; keeping the original chunk", _n(hook)
            )
            return chunk
        if isinstance(result, str):
            return result
        if inspect.iscoroutine(result):
            result.close()
            logger.error("pipeline hook after_llm.on_chunk must be sync; ignoring its result")
            return chunk
        self._bad_type(hook, result, "a str")
        return chunk

    async def on_sentence(self, sentence: str) -> str | None:
        """``after_llm.on_sentence``. Returns the sentence to speak, or ``None``: drop it (the hook
        returned ``""``). A hook result of ``None`` keeps the sentence unchanged."""
        hook = self._hooks.get("on_sentence")
        if hook is None:
            return sentence
        ok, result = await self._call(hook, sentence)
        if not ok or result is None:
            return sentence
        if isinstance(result, str):
            return result or None
        self._bad_type(hook, result, "a str or None")
        return sentence

    async def on_response(self, text: str) -> str:
        """``after_llm.on_response`` (or legacy bare ``after_llm``). Returns the full reply to speak; a
        hook result of ``None`` keeps it."""
        hook = self._hooks.get("on_response")
        if hook is None:
            return text
        ok, result = await self._call(hook, text)
        if not ok or result is None:
            return text
        if isinstance(result, str):
            return result
        self._bad_type(hook, result, "a str or None")
        return text

    async def before_synthesize(self, sentence: str) -> str | None:
        """Text about to be synthesized. Returns the text, or ``None``: skip TTS for this sentence."""
        hook = self._hooks.get("before_synthesize")
        if hook is None:
            return sentence
        return await self._run_optional_str(hook, sentence)

    # -- plumbing -------------------------------------------------------------------------------------

    async def _call(self, hook: _Hook, value: object) -> _Outcome:
        try:
            result = hook.fn(value, self.ctx) if hook.wants_ctx else hook.fn(value)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            logger.exception(
                "pipeline hook %s (%s) raised; passing the original value through", hook.name, _n(hook)
            )
            return False, None
        return True, result

    async def _run_optional_str(self, hook: _Hook, text: str) -> str | None:
        ok, result = await self._call(hook, text)
        if not ok:
            return text
        if result is None or isinstance(result, str):
            return result
        self._bad_type(hook, result, "a str or None")
        return text

    async def _run_bytes(self, hook: _Hook, chunk: bytes) -> bytes | None:
        ok, result = await self._call(hook, chunk)
        if not ok:
            return chunk
        if result is None or isinstance(result, bytes):
            return result
        if isinstance(result, bytearray | memoryview):
            return bytes(result)
        self._bad_type(hook, result, "bytes or None")
        return chunk

    @staticmethod
    def _bad_type(hook: _Hook, result: object, expected: str) -> None:
        logger.error(
            "pipeline hook %s (%s) returned %s, expected %s; passing the original value through",
            hook.name,
            _n(hook),
            type(result).__name__,
            expected,
        )


def _n(hook: _Hook) -> str:
    name = getattr(hook.fn, "__qualname__", None)
    return name if isinstance(name, str) else repr(hook.fn)
