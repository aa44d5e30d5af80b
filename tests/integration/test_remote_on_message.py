"""``serve(on_message="https://...")``: each turn POSTs the documented event to the user's endpoint."""

from __future__ import annotations

import pytest

from getpatter import Patter, PatterConfigError, PatterError
from getpatter.call.remote_message import MAX_REPLY_BYTES, RemoteMessageHandler, reply_text
from getpatter.carriers.twilio.config import Twilio
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.server import running
from tests.fakes.twilio import FakeCall
from tests.fakes.webhook_tool import FakeWebhookTool, Step
from tests.integration.harness import NUMBER, Harness, call_harness

GREETING = "Hello, thanks for calling."
APOLOGY = "Sorry, I'm having trouble right now. Could you say that again?"


async def _greeted(h: Harness) -> FakeCall:
    call = await h.dial()
    await call.wait_for_agent_audio(timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)
    return call


async def _turn(call: FakeCall) -> None:
    await call.say_tone(500)
    await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
    await call.wait_agent_quiet(quiet_ms=300, timeout=10)


async def test_each_turn_posts_the_documented_event_and_speaks_the_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTER_ALLOW_PRIVATE_WEBHOOKS", "1")  # the endpoint is on 127.0.0.1 over http
    endpoint = FakeWebhookTool(
        [Step(status=503), Step(json={"text": "We open at nine."}), Step(text="Goodbye for now.")]
    )
    async with (
        running(endpoint.app) as srv,
        call_harness(
            utterances=["When do you open?", "Thanks, bye"],
            use_llm=False,
            serve_kwargs={"on_message": srv.http_url + "/reply?key=abc"},
        ) as h,
    ):
        call = await _greeted(h)
        await _turn(call)
        await _turn(call)
        await call.hangup()
        await h.wait_ended()

    assert h.tts.texts == [GREETING, "We open at nine.", "Goodbye for now."]
    first, retry, second = (r.body for r in endpoint.requests)
    assert first == retry  # a 503 is retried with the same event
    assert set(first) == {"text", "call_id", "caller", "callee", "history"}
    assert (first["text"], first["call_id"], first["callee"]) == ("When do you open?", call.sid, NUMBER)
    assert [(e["role"], e["text"]) for e in first["history"]] == [
        ("assistant", GREETING),
        ("user", "When do you open?"),
    ]
    assert second["text"] == "Thanks, bye" and len(second["history"]) == 4
    assert endpoint.requests[0].path == "/reply" and endpoint.requests[0].headers["content-type"] == (
        "application/json"
    )
    assert h.llm.requests == []


async def test_an_oversized_reply_is_refused_and_the_call_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATTER_ALLOW_PRIVATE_WEBHOOKS", "1")
    endpoint = FakeWebhookTool([Step(stream_bytes=MAX_REPLY_BYTES + 1), Step(text="Back again.")])
    async with (
        running(endpoint.app) as srv,
        call_harness(
            utterances=["Hello?", "Hello again?"],
            use_llm=False,
            serve_kwargs={"on_message": srv.http_url + "/reply"},
        ) as h,
    ):
        call = await _greeted(h)
        await _turn(call)
        await _turn(call)
        await call.hangup()
        await h.wait_ended()
    assert " ".join(h.tts.texts) == f"{GREETING} {APOLOGY} Back again."
    assert len(endpoint.requests) == 2  # a too-large body is not retried


async def test_a_url_on_a_private_address_is_blocked_without_the_opt_in() -> None:
    endpoint = FakeWebhookTool([Step(text="should never be asked")])
    async with running(endpoint.app) as srv:
        handler = RemoteMessageHandler(srv.http_url.replace("http://", "https://") + "/reply")
        with pytest.raises(PatterError, match="non-public address"):
            await handler({"text": "hi", "call_id": "c", "caller": "", "callee": "", "history": []})
    assert endpoint.requests == []
    assert "/reply" not in repr(handler)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://replies.example.com/turn", "plain http"),
        ("wss://replies.example.com/stream", "WebSocket"),
        ("ftp://replies.example.com/x", "not an https"),
        ("replies.example.com", "not an https"),
    ],
)
def test_bad_on_message_urls_are_refused_at_serve_time(url: str, match: str) -> None:
    phone = Patter(carrier=Twilio("AC" + "1" * 32, "token"), phone_number=NUMBER, webhook_url="a.example.com")
    agent = phone.agent("x", stt=DeepgramSTT(api_key="k"), tts=ElevenLabsTTS(api_key="k"))
    with pytest.raises(PatterConfigError, match=match):
        phone.asgi_app(agent, on_message=url)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("plain words", "plain words"),
        ('{"text": "from json"}', "from json"),
        ('"a json string"', "a json string"),
    ],
)
def test_reply_shapes(body: str, text: str) -> None:
    assert reply_text(body) == text
