"""``hooks=PipelineHooks(...)`` over whole calls: the after_llm tiers rewrite or drop text before TTS, and
``HookContext.history`` is the conversation so far."""

from __future__ import annotations

import warnings

import pytest

from getpatter.call import hooks as hooks_module
from getpatter.call.hooks import HookContext, PatterDeprecationWarning, PipelineHooks
from tests.fakes.twilio import FakeCall
from tests.integration.harness import Harness, call_harness

GREETING = "Hello, thanks for calling."


async def _greeted(h: Harness) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    return call


async def _turn(call: FakeCall) -> None:
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)


def _pairs(ctx: HookContext) -> list[tuple[str, str]]:
    return [(entry["role"], entry["text"]) for entry in ctx.history]


async def test_on_chunk_and_on_sentence_rewrite_and_drop_text_before_tts_with_current_history() -> None:
    chunks: list[str] = []
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    def on_chunk(chunk: str) -> str:
        chunks.append(chunk)
        return chunk.replace("!", ".")

    async def on_sentence(sentence: str, ctx: HookContext) -> str | None:
        seen.append((sentence, _pairs(ctx)))
        if "PIN" in sentence:
            return ""  # drop it: never spoken
        if sentence.startswith("We open"):
            return "We open at nine in the morning."
        return None  # keep

    hooks = PipelineHooks(after_llm={"on_chunk": on_chunk, "on_sentence": on_sentence})
    async with call_harness(
        utterances=["When do you open?", "Thanks"],
        replies=["Good question! Your PIN is 4321. We open at nine!", "You are welcome!"],
        agent_kwargs={"hooks": hooks},
    ) as h:
        call = await _greeted(h)
        await _turn(call)
        await _turn(call)
        await call.hangup()
        await h.wait_ended()

    assert "".join(chunks) == "Good question! Your PIN is 4321. We open at nine!You are welcome!"
    assert len(chunks) > 4  # per streamed delta, not per reply
    assert h.tts.texts == [GREETING, "Good question.", "We open at nine in the morning.", "You are welcome."]
    first_turn = [("assistant", GREETING), ("user", "When do you open?")]
    assert seen[:3] == [
        ("Good question.", first_turn),
        ("Your PIN is 4321.", first_turn),
        ("We open at nine.", first_turn),
    ]  # the greeting is not LLM output: no after_llm hook for it
    assert seen[3] == (
        "You are welcome.",
        [*first_turn, ("assistant", "Good question. We open at nine in the morning."), ("user", "Thanks")],
    )
    assert h.ended[0]["transcript"][2] == {
        "role": "assistant",
        "text": "Good question. We open at nine in the morning.",
    }
    # The LLM's context holds what was said, not what the LLM first wrote.
    assert h.llm.requests[1]["messages"][-2] == {
        "role": "assistant",
        "content": "Good question. We open at nine in the morning.",
    }


@pytest.mark.parametrize("form", ["dict", "legacy_callable"])
async def test_on_response_gets_the_whole_reply_once_and_its_text_is_spoken(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, list[tuple[str, str]]]] = []

    def on_response(text: str, ctx: HookContext) -> str:
        calls.append((text, _pairs(ctx)))
        return text.replace("Tuesday", "Wednesday")

    if form == "dict":
        hooks = PipelineHooks(after_llm={"on_response": on_response})
    else:
        monkeypatch.setattr(hooks_module, "_legacy_after_llm_warned", False)
        with pytest.warns(PatterDeprecationWarning, match="after_llm"):
            hooks = PipelineHooks(after_llm=on_response)
    async with call_harness(
        utterances=["When can I come?"],
        replies=["Come on Tuesday. Bring your card. Tuesday is quiet."],
        agent_kwargs={"hooks": hooks},
    ) as h:
        call = await _greeted(h)
        await _turn(call)
        await call.hangup()
        await h.wait_ended()

    assert calls == [
        (
            "Come on Tuesday. Bring your card. Tuesday is quiet.",
            [("assistant", GREETING), ("user", "When can I come?")],
        )
    ]
    assert " ".join(h.tts.texts[1:]) == "Come on Wednesday. Bring your card. Wednesday is quiet."
    assert h.ended[0]["transcript"][-1]["text"] == "Come on Wednesday. Bring your card. Wednesday is quiet."


async def test_a_failing_after_llm_hook_passes_the_text_through(caplog: pytest.LogCaptureFixture) -> None:
    def boom(text: str, ctx: HookContext) -> str:
        raise RuntimeError("hook bug")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the dict form never warns
        hooks = PipelineHooks(after_llm={"on_sentence": boom, "on_response": boom})
    async with call_harness(utterances=["Hi"], replies=["Hello again."], agent_kwargs={"hooks": hooks}) as h:
        call = await _greeted(h)
        await _turn(call)
        await call.hangup()
        await h.wait_ended()
    assert h.tts.texts == [GREETING, "Hello again."]
    assert "after_llm" in caplog.text or "on_sentence" in caplog.text


async def test_guardrails_see_the_hooked_sentence_replace_it_and_end_the_reply() -> None:
    from getpatter.guardrails import Guardrail

    def on_sentence(sentence: str, ctx: HookContext) -> str | None:
        return sentence.replace("cheap", "discount")  # the guardrail must judge this, not the raw LLM text

    rail = Guardrail("no_discounts", blocked_terms=["discount"], replacement="Let me check with the team.")
    async with call_harness(
        utterances=["Any deals?"],
        replies=["Sure, happy to help with that. We have cheap plans today. Ask about them at the desk."],
        agent_kwargs={"hooks": PipelineHooks(after_llm={"on_sentence": on_sentence}), "guardrails": [rail]},
    ) as h:
        call = await _greeted(h)
        await _turn(call)
        await call.hangup()
        await h.wait_ended()
    assert h.tts.texts == [GREETING, "Sure, happy to help with that.", "Let me check with the team."]
    assert (
        h.ended[0]["transcript"][-1]["text"] == "Sure, happy to help with that. Let me check with the team."
    )


async def test_audio_stage_aliases_run_as_the_hooks_they_name() -> None:
    stt_chunks: list[int] = []
    tts_chunks: list[int] = []

    def before_stt(chunk: bytes) -> bytes:
        stt_chunks.append(len(chunk))
        return chunk

    async def after_stt(text: str, ctx: HookContext) -> str:
        return text + " (caller is a member)"

    def before_tts(sentence: str) -> str:
        return sentence.replace("Hi", "Hi there")

    def after_tts(chunk: bytes) -> bytes:
        tts_chunks.append(len(chunk))
        return chunk

    hooks = PipelineHooks(
        before_stt=before_stt, after_stt=after_stt, before_tts=before_tts, after_tts=after_tts
    )
    assert hooks.before_send_to_stt is before_stt and hooks.after_synthesize is after_tts
    async with call_harness(
        utterances=["Book me in"], replies=["Hi, you are booked."], agent_kwargs={"hooks": hooks}
    ) as h:
        call = await _greeted(h)
        await _turn(call)
        await call.hangup()
        await h.wait_ended()
    assert h.llm.requests[0]["messages"][-1] == {"role": "user", "content": "Book me in (caller is a member)"}
    assert h.tts.texts == [GREETING, "Hi there, you are booked."]
    assert sum(stt_chunks) > 8000 and sum(tts_chunks) > 8000  # audio really went through both


def test_an_alias_and_its_hook_together_is_a_config_error() -> None:
    from getpatter import PatterConfigError

    with pytest.raises(PatterConfigError, match="before_tts is another name for before_synthesize"):
        PipelineHooks(before_synthesize=str.upper, before_tts=str.lower)
