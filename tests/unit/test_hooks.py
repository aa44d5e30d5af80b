"""Pipeline hooks: config validation, after_llm forms, HookRunner None-semantics and fail-open behaviour."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import getpatter.call.hooks as hooks_mod
from getpatter.call.hooks import (
    AfterLLMHooks,
    HookContext,
    HookRunner,
    PatterDeprecationWarning,
    PipelineHooks,
)
from getpatter.errors import PatterConfigError

CTX = HookContext(call_id="CA123", caller="+15550001111", callee="+15550002222")


def runner(**hooks: Any) -> HookRunner:
    return HookRunner(PipelineHooks(**hooks), CTX)


@pytest.fixture
def fresh_legacy_warning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(hooks_mod, "_legacy_after_llm_warned", False)
    yield


# --- config objects ------------------------------------------------------------------------------------


def test_hook_context_defaults_and_frozen() -> None:
    assert CTX.history == ()
    with pytest.raises(AttributeError):
        CTX.call_id = "x"  # type: ignore[misc]


def test_pipeline_hooks_all_optional_and_frozen() -> None:
    hooks = PipelineHooks()
    assert hooks.before_send_to_stt is None and hooks.after_llm is None
    with pytest.raises(AttributeError):
        hooks.before_llm = None  # type: ignore[misc]


def test_non_callable_hook_rejected() -> None:
    with pytest.raises(PatterConfigError, match="after_transcribe"):
        PipelineHooks(after_transcribe="nope")  # type: ignore[arg-type]
    with pytest.raises(PatterConfigError, match="on_sentence"):
        AfterLLMHooks(on_sentence=42)  # type: ignore[arg-type]


def test_after_llm_dict_normalized() -> None:
    def on_chunk(c: str) -> str:
        return c

    hooks = PipelineHooks(after_llm={"on_chunk": on_chunk})
    assert hooks.after_llm == AfterLLMHooks(on_chunk=on_chunk)


def test_after_llm_dict_unknown_key_rejected() -> None:
    with pytest.raises(PatterConfigError, match="on_sentense"):
        PipelineHooks(after_llm={"on_sentense": lambda s, c: s})


def test_after_llm_wrong_type_rejected() -> None:
    with pytest.raises(PatterConfigError, match="after_llm"):
        PipelineHooks(after_llm=123)  # type: ignore[arg-type]


def test_legacy_callable_after_llm_warns_once(fresh_legacy_warning: None) -> None:
    def legacy(text: str, ctx: HookContext) -> str:
        return text.upper()

    with pytest.warns(PatterDeprecationWarning, match="on_response") as record:
        hooks = PipelineHooks(after_llm=legacy)
    assert len(record) == 1
    assert record[0].filename == __file__  # points at the user's line
    assert hooks.after_llm == AfterLLMHooks(on_response=legacy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PipelineHooks(after_llm=legacy)  # second time: silent
    assert issubclass(PatterDeprecationWarning, DeprecationWarning)


async def test_legacy_callable_runs_as_on_response(fresh_legacy_warning: None) -> None:
    with pytest.warns(PatterDeprecationWarning):
        r = runner(after_llm=lambda text, ctx: text + " (checked)")
    assert r.is_set("on_response") and not r.is_set("on_sentence")
    assert await r.on_response("Hello.") == "Hello. (checked)"


# --- unset hooks are pass-through ----------------------------------------------------------------------


async def test_unset_hooks_pass_values_through() -> None:
    for r in (HookRunner(None, CTX), runner()):
        msgs = [{"role": "user", "content": "hi"}]
        assert await r.before_send_to_stt(b"\x00\x01") == b"\x00\x01"
        assert await r.after_transcribe("hello") == "hello"
        assert await r.before_llm(msgs) is msgs
        assert r.on_chunk("tok") == "tok"
        assert await r.on_sentence("A sentence.") == "A sentence."
        assert await r.on_response("All.") == "All."
        assert await r.before_synthesize("Say this.") == "Say this."
        assert await r.after_synthesize(b"pcm") == b"pcm"
        assert not r.is_set("before_llm")


# --- sync and async, with or without ctx ---------------------------------------------------------------


async def test_sync_and_async_hooks_receive_value_and_ctx() -> None:
    seen: list[tuple[str, HookContext]] = []

    def sync_hook(text: str, ctx: HookContext) -> str:
        seen.append((text, ctx))
        return text + "!"

    async def async_hook(text: str, ctx: HookContext) -> str:
        seen.append((text, ctx))
        return text + "?"

    assert await runner(after_transcribe=sync_hook).after_transcribe("hi") == "hi!"
    assert await runner(after_transcribe=async_hook).after_transcribe("hi") == "hi?"
    assert seen == [("hi", CTX), ("hi", CTX)]


async def test_single_argument_hooks_get_value_only() -> None:
    async def one_arg(text: str) -> str:
        return text.upper()

    def optional_ctx(text: str, ctx: HookContext | None = None) -> str:
        return f"{text}:{ctx.call_id if ctx else None}"

    r = runner(before_synthesize=one_arg, after_transcribe=str.title, after_llm={"on_chunk": optional_ctx})
    assert await r.before_synthesize("hi") == "HI"
    assert await r.after_transcribe("hello there") == "Hello There"
    assert r.on_chunk("tok") == "tok:CA123"  # an optional second parameter still receives ctx


async def test_ctx_can_be_replaced_between_turns() -> None:
    contexts: list[HookContext] = []
    r = runner(after_transcribe=lambda text, ctx: contexts.append(ctx))
    await r.after_transcribe("one")
    r.ctx = HookContext("CA123", "a", "b", history=({"role": "user", "content": "one"},))
    await r.after_transcribe("two")
    assert contexts[0].history == () and contexts[1].history == ({"role": "user", "content": "one"},)


# --- None semantics per hook (A.17) --------------------------------------------------------------------


async def test_before_send_to_stt_replace_and_drop() -> None:
    assert await runner(before_send_to_stt=lambda b, c: b[::-1]).before_send_to_stt(b"ab") == b"ba"
    assert await runner(before_send_to_stt=lambda b, c: None).before_send_to_stt(b"ab") is None
    assert await runner(before_send_to_stt=lambda b, c: bytearray(b"xy")).before_send_to_stt(b"ab") == b"xy"


async def test_after_transcribe_none_skips_turn() -> None:
    assert await runner(after_transcribe=lambda t, c: None).after_transcribe("uh") is None
    assert await runner(after_transcribe=lambda t, c: "fixed").after_transcribe("fixd") == "fixed"


async def test_before_llm_replace_or_keep() -> None:
    msgs: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
    new = [{"role": "system", "content": "be brief"}, *msgs]
    assert await runner(before_llm=lambda m, c: new).before_llm(msgs) is new

    def mutate_in_place(m: list[dict[str, Any]], ctx: HookContext) -> None:
        m.append({"role": "system", "content": "added"})

    out = await runner(before_llm=mutate_in_place).before_llm(msgs)
    assert out is msgs and out[-1]["content"] == "added"


async def test_on_sentence_keep_drop_replace() -> None:
    async def hook(sentence: str, ctx: HookContext) -> str | None:
        if "secret" in sentence:
            return ""
        if "bad" in sentence:
            return sentence.replace("bad", "good")
        return None

    r = runner(after_llm={"on_sentence": hook})
    assert await r.on_sentence("Plain one.") == "Plain one."
    assert await r.on_sentence("The secret is 42.") is None
    assert await r.on_sentence("A bad day.") == "A good day."


async def test_on_response_none_keeps_str_replaces() -> None:
    assert await runner(after_llm=AfterLLMHooks(on_response=lambda t, c: None)).on_response("Hi.") == "Hi."
    r = runner(after_llm=AfterLLMHooks(on_response=lambda t, c: "Replaced."))
    assert r.is_set("on_response")
    assert await r.on_response("Hi.") == "Replaced."


async def test_before_synthesize_none_skips_tts() -> None:
    assert await runner(before_synthesize=lambda s, c: None).before_synthesize("x") is None
    assert await runner(before_synthesize=lambda s, c: "y").before_synthesize("x") == "y"


async def test_after_synthesize_replace_and_discard() -> None:
    assert await runner(after_synthesize=lambda b, c: None).after_synthesize(b"pcm") is None
    assert await runner(after_synthesize=lambda b, c: b"\x00" * 4).after_synthesize(b"pcm") == b"\x00" * 4


def test_on_chunk_sync_per_token() -> None:
    r = runner(after_llm={"on_chunk": lambda chunk: chunk.replace("*", "")})
    assert [r.on_chunk(t) for t in ["**He", "llo**", " there"]] == ["He", "llo", " there"]


# --- fail-open -----------------------------------------------------------------------------------------


def boom(*args: Any) -> Any:
    raise ValueError("hook exploded")


async def async_boom(*args: Any) -> Any:
    raise ValueError("async hook exploded")


@pytest.mark.parametrize("bad", [boom, async_boom])
async def test_raising_hooks_pass_original_through(bad: Any, caplog: pytest.LogCaptureFixture) -> None:
    r = runner(
        before_send_to_stt=bad,
        after_transcribe=bad,
        before_llm=bad,
        before_synthesize=bad,
        after_synthesize=bad,
        after_llm={"on_sentence": bad, "on_response": bad},
    )
    msgs = [{"role": "user", "content": "hi"}]
    with caplog.at_level(logging.ERROR, logger="getpatter.call.hooks"):
        assert await r.before_send_to_stt(b"ab") == b"ab"
        assert await r.after_transcribe("t") == "t"
        assert await r.before_llm(msgs) is msgs
        assert await r.on_sentence("s.") == "s."
        assert await r.on_response("r.") == "r."
        assert await r.before_synthesize("x") == "x"
        assert await r.after_synthesize(b"pcm") == b"pcm"
    logged = [rec.getMessage() for rec in caplog.records]
    for name in ("before_send_to_stt", "after_transcribe", "before_llm", "on_sentence", "on_response"):
        assert any(name in msg for msg in logged), name
    assert all(rec.exc_info for rec in caplog.records)


def test_raising_on_chunk_keeps_token(caplog: pytest.LogCaptureFixture) -> None:
    r = runner(after_llm={"on_chunk": boom})
    with caplog.at_level(logging.ERROR, logger="getpatter.call.hooks"):
        assert r.on_chunk("tok") == "tok"
    assert "on_chunk" in caplog.records[0].getMessage()


def test_async_on_chunk_is_ignored_not_awaited(caplog: pytest.LogCaptureFixture) -> None:
    async def async_chunk(chunk: str) -> str:
        return "changed"

    r = runner(after_llm={"on_chunk": async_chunk})
    with caplog.at_level(logging.ERROR, logger="getpatter.call.hooks"):
        assert r.on_chunk("tok") == "tok"
    assert "must be sync" in caplog.records[0].getMessage()


async def test_wrong_return_type_passes_original(caplog: pytest.LogCaptureFixture) -> None:
    r = runner(
        after_transcribe=lambda t, c: 42,
        before_llm=lambda m, c: "not a list",
        after_synthesize=lambda b, c: "not bytes",
        after_llm={"on_chunk": lambda c: 1, "on_sentence": lambda s, c: 3.0},
    )
    msgs = [{"role": "user", "content": "hi"}]
    with caplog.at_level(logging.ERROR, logger="getpatter.call.hooks"):
        assert await r.after_transcribe("t") == "t"
        assert await r.before_llm(msgs) is msgs
        assert await r.after_synthesize(b"pcm") == b"pcm"
        assert r.on_chunk("tok") == "tok"
        assert await r.on_sentence("s.") == "s."
    assert len(caplog.records) == 5
