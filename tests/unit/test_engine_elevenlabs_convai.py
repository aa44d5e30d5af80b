"""ElevenLabsConvAI against the strict fake ConvAI server (real WebSocket + REST on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import socket
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import orjson
import pytest
from websockets.asyncio.client import connect

from getpatter.audio.format import MULAW_8K, PCM16_16K, AudioFormat
from getpatter.engines import elevenlabs
from getpatter.engines.base import (
    AgentTranscript,
    AudioOut,
    CallerSpeechStarted,
    EngineConfig,
    EngineEvent,
    ResponseDone,
    ToolCall,
    UserTranscript,
)
from getpatter.engines.elevenlabs_convai import ElevenLabsConvAI, ElevenLabsConvAISession
from getpatter.errors import AuthenticationError, PatterConfigError, PatterConnectionError, RateLimitError
from tests.fakes.elevenlabs_convai import Conversation, FakeElevenLabsConvAI, Turn
from tests.fakes.server import running

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

KEY, AGENT = "el-test", "agent_test"
VOICE = "EXAVITQu4vr4xnSDxMaL"
FIRST = "Hi, Acme here, how can I help?"
CONFIG = EngineConfig(
    instructions="You are Acme's receptionist.", first_message=FIRST, carrier_format=MULAW_8K
)


# -- helpers --------------------------------------------------------------------------------------------


def voice(ms: int, fmt: AudioFormat) -> bytes:
    n = fmt.sample_rate * ms // 1000
    pcm = b"".join(
        int(8000 * math.sin(2 * math.pi * 300.0 * i / fmt.sample_rate)).to_bytes(2, "little", signed=True)
        for i in range(n)
    )
    return audioop.lin2ulaw(pcm, 2) if fmt.encoding == "mulaw" else pcm


def quiet(ms: float, fmt: AudioFormat) -> bytes:
    return (b"\xff" if fmt.encoding == "mulaw" else b"\x00\x00") * int(fmt.sample_rate * ms // 1000)


async def feed(session: ElevenLabsConvAISession, audio: bytes, chunk_ms: int = 20) -> None:
    step = session.input_format.bytes_for_ms(chunk_ms)
    for i in range(0, len(audio), step):
        await session.send_audio(audio[i : i + step])


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Bounded poll of recorded state (the fake has nothing to await); not a timing assertion."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


class Events:
    """Collects a session's events in the background, like the call layer's reader would."""

    def __init__(self, session: ElevenLabsConvAISession) -> None:
        self.items: list[EngineEvent] = []
        self.error: PatterConnectionError | None = None
        self.ended = False
        self._task = asyncio.create_task(self._run(session))

    async def _run(self, session: ElevenLabsConvAISession) -> None:
        try:
            async for event in session:
                self.items.append(event)
        except PatterConnectionError as exc:
            self.error = exc
        self.ended = True

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.items if isinstance(e, kind)]

    async def wait(self, predicate: Callable[[list[EngineEvent]], bool]) -> None:
        await until(lambda: predicate(self.items) or self.ended)
        assert predicate(self.items), (self.items, self.error)

    async def finish(self) -> None:
        await asyncio.wait_for(self._task, 5)


def engine(base_url: str, **options: Any) -> ElevenLabsConvAI:
    return ElevenLabsConvAI(KEY, AGENT, base_url=base_url, **options)


@contextlib.asynccontextmanager
async def conversation(
    fake: FakeElevenLabsConvAI, config: EngineConfig = CONFIG, **options: Any
) -> AsyncIterator[tuple[ElevenLabsConvAISession, Events, Conversation]]:
    async with running(fake.app) as srv:
        session = await engine(srv.http_url, **options).connect(config)
        events = Events(session)
        try:
            yield session, events, fake.conversations[-1]
        finally:
            await session.close()
            await events.finish()


def sent_audio(conv: Conversation, start: int = 0) -> list[dict[str, Any]]:
    return [m["audio_event"] for m in conv.sent_of("audio")[start:]]


def n_speech_audio(conv: Conversation) -> int:
    return len(conv.sent_of("audio"))


def said(text: str) -> Callable[[list[EngineEvent]], bool]:
    return lambda items: any(isinstance(e, AgentTranscript) and e.text == text for e in items)


def by_kind(events: list[EngineEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


# -- configuration --------------------------------------------------------------------------------------


def test_missing_key_or_agent_names_parameter_and_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("ELEVENLABS_AGENT_ID", raising=False)
    with pytest.raises(PatterConfigError, match=r"api_key.*ELEVENLABS_API_KEY"):
        ElevenLabsConvAI(agent_id=AGENT)
    with pytest.raises(PatterConfigError, match=r"agent_id.*ELEVENLABS_AGENT_ID"):
        ElevenLabsConvAI(api_key="secret-key-123")
    monkeypatch.setenv("ELEVENLABS_API_KEY", "secret-key-123")
    monkeypatch.setenv("ELEVENLABS_AGENT_ID", "agent_env")
    convai = elevenlabs.ConvAI()
    assert isinstance(convai, ElevenLabsConvAI)
    assert convai.provider_mode == "elevenlabs_convai"
    assert convai.agent_id == "agent_env"
    assert "secret-key-123" not in repr(convai)
    with pytest.raises(PatterConfigError, match="overrides"):
        ElevenLabsConvAI(overrides={"temperature"})
    with pytest.raises(PatterConfigError, match="base_url"):
        ElevenLabsConvAI(base_url="api.elevenlabs.io")


# -- connection and initiation --------------------------------------------------------------------------


async def test_mulaw_carrier_initiation_field_by_field_via_signed_url() -> None:
    fake = FakeElevenLabsConvAI(script=[])
    async with conversation(fake, voice=VOICE) as (session, _events, conv):
        assert conv.received[0] == {
            "type": "conversation_initiation_client_data",
            "conversation_config_override": {
                "agent": {
                    "prompt": {"prompt": "You are Acme's receptionist."},
                    "first_message": FIRST,
                    "language": "en",
                },
                "asr": {"input_format": "ulaw_8000"},
                "tts": {"voice_id": VOICE, "output_format": "ulaw_8000"},
            },
        }
        assert session.input_format == MULAW_8K
        assert session.output_format == MULAW_8K
        assert session.conversation_id == conv.conversation_id
        # Documented private-agent flow: REST with the key, then the signed URL with no key on the socket.
        assert [h["xi-api-key"] for h in fake.signed_url_requests] == [KEY]
        assert conv.auth == "signature"
        assert "xi-api-key" not in conv.headers
        assert conv.query["agent_id"] == AGENT


async def test_pcm_carrier_asks_pcm16k_and_omits_empty_overrides() -> None:
    fake = FakeElevenLabsConvAI()
    config = EngineConfig(instructions="", voice="alloy", language="", carrier_format=PCM16_16K)
    async with conversation(fake, config) as (session, _events, conv):
        assert conv.received[0] == {
            "type": "conversation_initiation_client_data",
            "conversation_config_override": {
                "asr": {"input_format": "pcm_16000"},
                "tts": {"output_format": "pcm_16000"},
            },
        }
        assert (session.input_format, session.output_format) == (PCM16_16K, PCM16_16K)


async def test_formats_follow_what_the_server_confirms() -> None:
    fake = FakeElevenLabsConvAI(honour_format_override=False, agent_output_format="pcm_22050")
    async with conversation(fake) as (session, _events, conv):
        assert conv.received[0]["conversation_config_override"]["asr"] == {"input_format": "ulaw_8000"}
        assert session.input_format == PCM16_16K
        assert session.output_format == AudioFormat("pcm16", 22050)


async def test_header_auth_and_chosen_overrides() -> None:
    fake = FakeElevenLabsConvAI(allowed_overrides={"agent.first_message"})
    options: dict[str, Any] = {
        "auth": "header",
        "overrides": {"first_message"},
        "dynamic_variables": {"name": "Ada"},
    }
    async with conversation(fake, CONFIG, **options) as (_session, _events, conv):
        assert fake.signed_url_requests == []
        assert conv.auth == "header"
        assert conv.headers["xi-api-key"] == KEY
        assert conv.received[0] == {
            "type": "conversation_initiation_client_data",
            "conversation_config_override": {"agent": {"first_message": FIRST}},
            "dynamic_variables": {"name": "Ada"},
        }


async def test_disallowed_override_is_a_connection_error_with_a_hint() -> None:
    fake = FakeElevenLabsConvAI(allowed_overrides={"agent.first_message"})
    async with running(fake.app) as srv:
        with pytest.raises(PatterConnectionError, match=r"not allowed.*enabled on the agent"):
            await engine(srv.http_url).connect(CONFIG)
    assert fake.conversations[0].close_code == 1008


# -- audio, turns, interruption -------------------------------------------------------------------------


async def test_first_message_audio_in_negotiated_format_and_say_is_a_no_op() -> None:
    fake = FakeElevenLabsConvAI(ping_interval_s=None)
    async with conversation(fake) as (session, events, conv):
        await events.wait(
            lambda items: len([e for e in items if isinstance(e, AudioOut)]) == n_speech_audio(conv)
        )
        await session.say(FIRST)
        audio_events = sent_audio(conv)
        assert len(audio_events) >= 3
        first_id = str(audio_events[0]["event_id"])
        outs = events.of(AudioOut)
        assert b"".join(o.audio for o in outs) == b"".join(
            base64.b64decode(a["audio_base_64"]) for a in audio_events
        )
        assert {o.item_id for o in outs} == {first_id}
        expected_ms = fake.reply_ms(FIRST)
        assert MULAW_8K.duration_ms(sum(len(o.audio) for o in outs)) == pytest.approx(expected_ms, abs=1)
        assert events.of(AgentTranscript) == [AgentTranscript(FIRST, first_id, final=True)]
        assert by_kind(events.items)[:2] == ["AudioOut", "AgentTranscript"]
        assert conv.sent_of("agent_response") == [
            {"type": "agent_response", "agent_response_event": {"agent_response": FIRST}}
        ]
        assert [m["type"] for m in conv.received] == ["conversation_initiation_client_data"]


async def test_two_turn_exchange() -> None:
    script = [Turn("What are your hours?", "We open at nine."), Turn("And on Sunday?", "Closed on Sundays.")]
    fake = FakeElevenLabsConvAI(script=script)
    async with conversation(fake) as (session, events, conv):
        fmt = session.input_format
        fed = quiet(fake.reply_ms(FIRST) + 100, fmt) + voice(300, fmt) + quiet(400, fmt)
        await feed(session, fed)
        await events.wait(said("We open at nine."))
        second = quiet(fake.reply_ms("We open at nine."), fmt) + voice(300, fmt) + quiet(400, fmt)
        await feed(session, second)
        await events.wait(said("Closed on Sundays."))
        await until(lambda: n_speech_audio(conv) == len(sent_audio(conv)) and len(events.of(AudioOut)) >= 9)
        assert events.of(UserTranscript) == [
            UserTranscript("What are your hours?"),
            UserTranscript("And on Sunday?"),
        ]
        texts = [e.text for e in events.of(AgentTranscript)]
        assert texts == [FIRST, "We open at nine.", "Closed on Sundays."]
        # No interruption: every agent turn's audio came through, one item per turn, in order.
        item_ids = list(dict.fromkeys(o.item_id for o in events.of(AudioOut)))
        assert len(item_ids) == 3 and sorted(item_ids, key=int) == item_ids
        assert [d.status for d in events.of(ResponseDone)] == ["completed", "completed"]
        assert events.of(CallerSpeechStarted) == []
        # user_audio_chunk: the only key, base64 of exactly the audio we fed (in order).
        chunks = conv.audio_chunks
        assert all(set(c) == {"user_audio_chunk"} for c in chunks)
        assert b"".join(base64.b64decode(c["user_audio_chunk"]) for c in chunks) == fed + second


async def test_interruption_clears_and_drops_stale_audio() -> None:
    fake = FakeElevenLabsConvAI(script=[Turn("Wait, stop.", "Sure, stopping.")], ping_interval_s=None)
    async with conversation(fake) as (session, events, conv):
        first_chunks = n_speech_audio(conv)
        await events.wait(lambda items: len([e for e in items if isinstance(e, AudioOut)]) == first_chunks)
        first_item = events.of(AudioOut)[0].item_id
        fmt = session.input_format
        await feed(session, voice(200, fmt) + quiet(400, fmt))  # barge in while the greeting "plays"
        await events.wait(said("Sure, stopping."))
        interrupted = conv.sent_of("interruption")[0]["interruption_event"]["event_id"]
        assert interrupted == sent_audio(conv)[first_chunks - 1]["event_id"]
        stale = sent_audio(conv)[first_chunks : first_chunks + fake.stale_audio_events]
        assert len(stale) == 2 and all(a["event_id"] <= interrupted for a in stale)
        after = events.items[events.items.index(CallerSpeechStarted()) :]
        assert [o for o in after if isinstance(o, AudioOut) and o.item_id == first_item] == []
        correction = conv.sent_of("agent_response_correction")[0]["agent_response_correction_event"]
        assert correction["original_agent_response"] == FIRST
        assert by_kind(after)[:4] == [
            "CallerSpeechStarted",
            "ResponseDone",
            "AgentTranscript",
            "UserTranscript",
        ]
        assert after[1] == ResponseDone(status="cancelled", response_id=first_item)
        assert after[2] == AgentTranscript(correction["corrected_agent_response"], first_item, final=True)
        new_items = {o.item_id for o in after if isinstance(o, AudioOut)}
        assert new_items and all(int(i) > interrupted for i in new_items)


async def test_audio_queued_before_an_interruption_is_never_yielded() -> None:
    fake = FakeElevenLabsConvAI(script=[Turn("Stop.", "OK.")], ping_interval_s=None, per_turn_event_ids=True)
    async with running(fake.app) as srv:
        session = await engine(srv.http_url).connect(CONFIG)
        conv = fake.conversations[0]
        await feed(session, voice(200, session.input_format))  # nobody reads events yet
        await until(lambda: session._turns.drop_through >= 1)
        greeting_ids = {a["event_id"] for a in sent_audio(conv)}
        assert greeting_ids == {1}  # per-turn ids: the whole greeting is event 1
        events = Events(session)
        await events.wait(lambda items: CallerSpeechStarted() in items)
        await session.close()
        await events.finish()
        assert events.of(AudioOut) == []
        assert events.items[:2] == [AgentTranscript(FIRST, "1", final=True), CallerSpeechStarted()]


async def test_client_side_interrupt_sends_nothing_and_mutes_the_item() -> None:
    fake = FakeElevenLabsConvAI(script=[Turn("Hello?", "Yes, hello.")], ping_interval_s=None)
    async with running(fake.app) as srv:
        session = await engine(srv.http_url).connect(CONFIG)
        conv = fake.conversations[0]
        await until(lambda: len(conv.sent_of("audio")) >= 3)
        first = await anext(aiter(session))
        assert isinstance(first, AudioOut)
        await session.interrupt(first.item_id, 40)
        events = Events(session)
        fmt = session.input_format
        await feed(session, quiet(fake.reply_ms(FIRST), fmt) + voice(200, fmt) + quiet(400, fmt))
        await events.wait(said("Yes, hello."))
        await until(lambda: len(events.of(AudioOut)) >= 3)
        await session.close()
        await events.finish()
        assert all(o.item_id != first.item_id for o in events.of(AudioOut))
        assert [m["type"] for m in conv.received if "type" in m] == ["conversation_initiation_client_data"]


# -- ping, tools, text ----------------------------------------------------------------------------------


async def test_pings_are_answered_with_pongs_invisibly() -> None:
    fake = FakeElevenLabsConvAI(ping_interval_s=0.02, max_unanswered_pings=100)
    async with conversation(fake) as (session, events, conv):
        await until(lambda: len(conv.pongs) >= 3)
        assert conv.received_of("pong")[:3] == [{"type": "pong", "event_id": i} for i in (1, 2, 3)]
        assert conv.close_code is None and not events.ended
        assert session.pongs_sent >= 3
        assert all(isinstance(e, AudioOut | AgentTranscript) for e in events.items)


async def test_fake_closes_a_client_that_never_pongs() -> None:
    fake = FakeElevenLabsConvAI(ping_interval_s=0.01, max_unanswered_pings=2, first_message="")
    async with running(fake.app) as srv:
        url = f"{srv.ws_url}/v1/convai/conversation?agent_id={AGENT}"
        async with connect(url, additional_headers={"xi-api-key": KEY}) as ws:
            await ws.send(orjson.dumps({"type": "conversation_initiation_client_data"}).decode())
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    async for _ in ws:
                        pass
            assert ws.close_code == 1008
    assert fake.conversations[0].close_reason.startswith("ping timeout")


async def test_tool_call_round_trip() -> None:
    turn = Turn(
        "Book a table for two on Monday.", "Booked: {result}.", "book_table", {"day": "monday", "people": 2}
    )
    fake = FakeElevenLabsConvAI(script=[turn], first_message="")
    async with conversation(fake, EngineConfig(instructions="x", carrier_format=MULAW_8K)) as (
        session,
        events,
        conv,
    ):
        fmt = session.input_format
        await feed(session, voice(300, fmt) + quiet(400, fmt))
        await events.wait(lambda items: any(isinstance(e, ToolCall) for e in items))
        call = events.of(ToolCall)[0]
        wire = conv.sent_of("client_tool_call")[0]["client_tool_call"]
        assert (call.call_id, call.name) == (wire["tool_call_id"], "book_table")
        assert orjson.loads(call.arguments) == {"day": "monday", "people": 2}
        await session.send_tool_result(call.call_id, "table 7")
        await events.wait(said("Booked: table 7."))
        assert conv.received_of("client_tool_result") == [
            {
                "type": "client_tool_result",
                "tool_call_id": call.call_id,
                "result": "table 7",
                "is_error": False,
            }
        ]
        assert events.of(UserTranscript) == [UserTranscript(turn.user)]


async def test_user_text_is_a_user_message_and_gets_a_reply() -> None:
    fake = FakeElevenLabsConvAI(script=[Turn("", "You pressed five.")], first_message="")
    async with conversation(fake) as (session, events, conv):
        await session.send_user_text("[DTMF: 5]")
        await session.send_contextual_update("Caller is a VIP.")
        await events.wait(said("You pressed five."))
        assert conv.received_of("user_message") == [{"type": "user_message", "text": "[DTMF: 5]"}]
        assert conv.received_of("contextual_update") == [
            {"type": "contextual_update", "text": "Caller is a VIP."}
        ]


# -- failures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["signed_url", "header"])
async def test_bad_key_is_an_authentication_error_without_the_key(
    auth: Literal["signed_url", "header"],
) -> None:
    fake = FakeElevenLabsConvAI(api_key="the-real-key")
    async with running(fake.app) as srv:
        with pytest.raises(AuthenticationError) as info:
            await ElevenLabsConvAI("wrong-key-999", AGENT, base_url=srv.http_url, auth=auth).connect(CONFIG)
    assert "wrong-key-999" not in str(info.value) and "ELEVENLABS_API_KEY" in str(info.value)
    assert fake.refusals[0][0] == 401 and fake.conversations == []


async def test_rate_limit_and_unknown_agent() -> None:
    fake = FakeElevenLabsConvAI(reject_status=429, retry_after=3)
    async with running(fake.app) as srv:
        with pytest.raises(RateLimitError) as info:
            await engine(srv.http_url).connect(CONFIG)
        assert info.value.retry_after == 3.0
        with pytest.raises(RateLimitError):
            await engine(srv.http_url, auth="header").connect(CONFIG)
        fake.reject_status = None
        with pytest.raises(PatterConfigError, match="ELEVENLABS_AGENT_ID"):
            await ElevenLabsConvAI(KEY, "agent_nope", base_url=srv.http_url).connect(CONFIG)


async def test_drop_raises_from_iteration_and_sends() -> None:
    fake = FakeElevenLabsConvAI(drop_after_events=4, ping_interval_s=None)
    async with running(fake.app) as srv:
        session = await engine(srv.http_url).connect(CONFIG)
        events = Events(session)
        await until(lambda: events.ended)
        assert isinstance(events.error, PatterConnectionError)
        assert "1011" in str(events.error)
        with pytest.raises(PatterConnectionError):
            await session.send_audio(quiet(40, session.input_format))
        await session.close()
        await session.close()


async def test_agent_ending_the_conversation_ends_iteration_cleanly() -> None:
    fake = FakeElevenLabsConvAI(script=[Turn("Bye.", "Goodbye!")], end_after_script=True, first_message="")
    async with conversation(fake) as (session, events, _conv):
        fmt = session.input_format
        await feed(session, voice(300, fmt) + quiet(400, fmt))
        await until(lambda: events.ended)
        assert events.error is None
        assert events.of(AgentTranscript)[-1].text == "Goodbye!"


async def test_close_is_idempotent_and_ends_iteration() -> None:
    fake = FakeElevenLabsConvAI()
    async with running(fake.app) as srv:
        session = await engine(srv.http_url).connect(CONFIG)
        events = Events(session)
        await session.close()
        await session.close()
        await events.finish()
        assert events.error is None
        await session.send_audio(b"\xff" * 160)  # a no-op after close
        assert fake.conversations[0].close_code == 1000


async def test_unreachable_service_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        for auth in ("signed_url", "header"):
            convai = ElevenLabsConvAI(KEY, AGENT, base_url=f"http://127.0.0.1:{port}", auth=auth)
            with pytest.raises(PatterConnectionError, match="could not"):
                await convai.connect(CONFIG)


@pytest.mark.parametrize(
    ("factory", "carrier", "name", "fmt"),
    [
        ("for_twilio", PCM16_16K, "ulaw_8000", MULAW_8K),  # fixed, whatever the carrier says
        ("for_telnyx", MULAW_8K, "pcm_16000", PCM16_16K),
    ],
)
async def test_carrier_factories_fix_the_audio_format(
    factory: str, carrier: AudioFormat, name: str, fmt: AudioFormat
) -> None:
    fake = FakeElevenLabsConvAI()
    config = EngineConfig(instructions="", voice="", language="", carrier_format=carrier)
    async with running(fake.app) as srv:
        made = getattr(ElevenLabsConvAI, factory)(api_key=KEY, agent_id=AGENT, base_url=srv.http_url)
        assert made.audio_format == name
        session = await made.connect(config)
        try:
            override = fake.conversations[-1].received[0]["conversation_config_override"]
            assert override == {"asr": {"input_format": name}, "tts": {"output_format": name}}
            assert (session.input_format, session.output_format) == (fmt, fmt)
        finally:
            await session.close()
    with pytest.raises(PatterConfigError, match="choose audio_format themselves"):
        getattr(ElevenLabsConvAI, factory)(api_key=KEY, agent_id=AGENT, audio_format="auto")
    with pytest.raises(PatterConfigError, match="audio_format='mp3'"):
        ElevenLabsConvAI(KEY, AGENT, audio_format="mp3")  # type: ignore[arg-type]
