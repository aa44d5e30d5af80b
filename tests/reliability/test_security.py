"""Security of whole calls: no secret in logs, reprs or the API; no docs; no outbound connection the user
did not configure; SSRF-safe webhook tools; the per-IP media-socket cap (API.md B.1)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from getpatter import Patter
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.llm.openai import OpenAILLM
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tools import Tool
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.openai_chat import Reply
from tests.fakes.server import running
from tests.fakes.telnyx import FakeTelnyx
from tests.fakes.twilio import new_sid
from tests.fakes.webhook_tool import FakeWebhookTool
from tests.integration.harness import NUMBER, PUBLIC_HOST, call_harness
from tests.reliability._support import harness_with_keys, until

TWILIO_TOKEN = "twtok-SEKRIT-7f3a9c1e5b2d4680aa11"
DEEPGRAM_KEY = "dgkey-SEKRIT-0c8e2a4f6b1d3957bb22"
OPENAI_KEY = "sk-SEKRIT-5e7a9c1b3d5f7092cc33"
ELEVENLABS_KEY = "elkey-SEKRIT-9b1d3f5a7c9e2468dd44"
SECRETS = (TWILIO_TOKEN, DEEPGRAM_KEY, OPENAI_KEY, ELEVENLABS_KEY)
#: Loggers of the fake vendors' *servers* (in this process only because the fakes are): what they log
#: about the requests they receive is the vendor's side of the wire, not something the SDK logged.
VENDOR_SIDE_LOGGERS = ("websockets.server", "uvicorn")
#: Third-party client libraries' handshake DEBUG logs: covered by their own (xfail) test below.
LIBRARY_HANDSHAKE_LOGGERS = ("websockets.client",)


def _leaks(text: str) -> list[str]:
    found = [s for s in SECRETS if s in text]
    # Also the distinctive middle part, in case a secret is cut or prefixed ("Token ...", "Bearer ...").
    found += [s for s in SECRETS if s.split("-")[2] in text and s not in found]
    return found


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.name, str(record.msg)]
    with contextlib.suppress(Exception):
        parts.append(record.getMessage())
    if record.args:
        parts.append(repr(record.args))
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
        parts.append(str(record.exc_info[1]))
    if record.exc_text:
        parts.append(record.exc_text)
    return "\n".join(parts)


# -- secrets ---------------------------------------------------------------------------------------------


async def test_secrets_never_appear_in_logs_reprs_errors_or_the_api(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with harness_with_keys(
        twilio_auth_token=TWILIO_TOKEN,
        deepgram_key=DEEPGRAM_KEY,
        openai_key=OPENAI_KEY,
        elevenlabs_key=ELEVENLABS_KEY,
        utterances=["What are your opening hours?"],
        replies=["Nine to five."],
        dashboard=True,
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
        await call.wait_agent_quiet(quiet_ms=300, timeout=10)
        # A forged webhook and a garbage frame: the error paths log too.
        bad = await h.twilio.post_voice_webhook(h.server.http_url, PUBLIC_HOST, signature="forged")
        assert bad.status_code == 403
        await call.send_raw("not json {")
        await call.hangup()
        await h.wait_ended()
        await until(lambda: h.phone.metrics_store.call_count == 1)

        # Everything the dashboard and the API show about the call.
        async with httpx.AsyncClient(timeout=5.0) as client:
            base = h.server.http_url
            paths = [
                "/",
                "/health",
                "/api/dashboard/calls",
                f"/api/dashboard/calls/{call.sid}",
                "/api/dashboard/active",
                "/api/dashboard/aggregates",
                "/api/dashboard/export/calls?format=json",
                "/api/dashboard/export/calls?format=csv",
                "/api/v1/calls",
                f"/api/v1/calls/{call.sid}",
                "/api/v1/analytics/overview",
                "/api/v1/analytics/costs",
            ]
            for path in paths:
                response = await client.get(base + path)
                assert response.status_code == 200, path
                assert _leaks(response.text) == [], path
        assert _leaks(json.dumps(h.ended, default=str)) == []
        assert _leaks(json.dumps(h.transcripts, default=str)) == []

        # Reprs of everything a user might print or a traceback might show.
        stt = DeepgramSTT(api_key=DEEPGRAM_KEY)
        llm = OpenAILLM(api_key=OPENAI_KEY)
        tts = ElevenLabsTTS(api_key=ELEVENLABS_KEY)
        twilio = Twilio("AC" + "0" * 31 + "1", TWILIO_TOKEN)
        agent = h.phone.agent("prompt", stt=stt, llm=llm, tts=tts)
        for obj in (h.phone, stt, llm, tts, twilio, agent, h.phone.metrics_store):
            assert _leaks(repr(obj)) == [], type(obj).__name__
            assert _leaks(str(obj)) == [], type(obj).__name__

    leaked = [
        (r.name, r.levelname, _leaks(_record_text(r)))
        for r in caplog.records
        if not r.name.startswith(VENDOR_SIDE_LOGGERS + LIBRARY_HANDSHAKE_LOGGERS) and _leaks(_record_text(r))
    ]
    assert leaked == []
    assert any(r.name.startswith("getpatter") for r in caplog.records)  # the capture did see the SDK


async def test_secrets_never_appear_in_library_debug_logs_of_a_call(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with harness_with_keys(
        twilio_auth_token=TWILIO_TOKEN,
        deepgram_key=DEEPGRAM_KEY,
        openai_key=OPENAI_KEY,
        elevenlabs_key=ELEVENLABS_KEY,
    ) as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        await call.hangup()
        await h.wait_ended()
    leaked = [
        (r.name, r.levelname, _leaks(_record_text(r)))
        for r in caplog.records
        if not r.name.startswith(VENDOR_SIDE_LOGGERS) and _leaks(_record_text(r))
    ]
    assert leaked == []


async def test_server_state_repr_hides_the_twilio_auth_token() -> None:
    phone = Patter(
        carrier=Twilio("AC" + "0" * 31 + "1", TWILIO_TOKEN), phone_number=NUMBER, webhook_url=PUBLIC_HOST
    )
    agent = phone.agent(
        "prompt",
        stt=DeepgramSTT(api_key=DEEPGRAM_KEY, base_url="ws://127.0.0.1:9"),
        tts=ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url="http://127.0.0.1:9"),
    )
    app = phone.asgi_app(agent, on_message=lambda event: "ok")
    assert _leaks(repr(app.state.patter)) == []


def test_telnyx_config_repr_hides_its_api_key() -> None:
    key = "KEY-SEKRIT-1a2b3c4d5e6f"
    config = Telnyx(api_key=key, connection_id="1684641123236054244", public_key=FakeTelnyx().public_key)
    assert key not in repr(config) and "SEKRIT" not in str(config)


# -- no docs ---------------------------------------------------------------------------------------------


async def test_no_interactive_docs_on_either_carrier_app() -> None:
    fake = FakeTelnyx()
    for carrier in (
        Twilio("AC" + "0" * 31 + "1", TWILIO_TOKEN, base_url="http://127.0.0.1:9"),
        Telnyx(
            api_key="KEYx",
            connection_id="1684641123236054244",
            public_key=fake.public_key,
            base_url="http://127.0.0.1:9/v2",
        ),
    ):
        phone = Patter(carrier=carrier, phone_number=NUMBER, webhook_url=PUBLIC_HOST)
        agent = phone.agent(
            "prompt",
            stt=DeepgramSTT(api_key="dg", base_url="ws://127.0.0.1:9"),
            tts=ElevenLabsTTS(api_key="el", base_url="http://127.0.0.1:9"),
        )
        app = phone.asgi_app(agent, on_message=lambda event: "ok")
        async with running(app) as srv, httpx.AsyncClient(timeout=5.0) as client:
            for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
                response = await client.get(srv.http_url + path)
                assert response.status_code == 404, (carrier.kind, path)
            assert (await client.get(srv.http_url + "/health")).status_code == 200


# -- no outbound connection the user did not configure ---------------------------------------------------


class SocketGuard:
    """Fail (and record) every connection or name lookup for anything but 127.0.0.1."""

    ALLOWED = ("127.0.0.1",)

    def __init__(self) -> None:
        self.attempts: list[tuple[str, Any]] = []

    def _check(self, kind: str, host: Any) -> None:
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host in self.ALLOWED:
            return
        self.attempts.append((kind, host))
        raise ConnectionRefusedError(f"socket guard: {kind} to {host!r} is not allowed in this test")

    @contextlib.contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[SocketGuard]:
        guard = self
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_getaddrinfo = socket.getaddrinfo
        real_create_connection = asyncio.base_events.BaseEventLoop.create_connection

        def connect_(sock: socket.socket, address: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                guard._check("connect", address[0])
            return real_connect(sock, address)

        def connect_ex_(sock: socket.socket, address: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                guard._check("connect_ex", address[0])
            return real_connect_ex(sock, address)

        def getaddrinfo_(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None:
                try:
                    guard._check("getaddrinfo", host)
                except ConnectionRefusedError as exc:
                    raise socket.gaierror(socket.EAI_NONAME, str(exc)) from None
            return real_getaddrinfo(host, *args, **kwargs)

        async def create_connection_(
            loop: Any, protocol_factory: Any, host: Any = None, *a: Any, **k: Any
        ) -> Any:
            if host is not None:
                guard._check("create_connection", host)
            return await real_create_connection(loop, protocol_factory, host, *a, **k)

        monkeypatch.setattr(socket.socket, "connect", connect_)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex_)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo_)
        monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "create_connection", create_connection_)
        try:
            yield self
        finally:
            monkeypatch.undo()


def test_socket_guard_catches_what_it_should(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself: a connect to a public address and a DNS lookup are both caught."""
    guard = SocketGuard()
    with guard.installed(monkeypatch):
        with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
            sock.connect(("192.0.2.1", 80))
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("example.com", 443)
    assert guard.attempts == [("connect", "192.0.2.1"), ("getaddrinfo", "example.com")]


async def test_a_whole_call_connects_only_where_it_was_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATTER_ALLOW_PRIVATE_WEBHOOKS", raising=False)
    guard = SocketGuard()
    with guard.installed(monkeypatch):
        async with call_harness(utterances=["Hello?"], replies=["Hi, how can I help?"]) as h:
            call = await h.dial()
            await call.wait_for_agent_audio(timeout=5)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await call.say_tone(500)
            await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=5)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await call.hangup()
            await h.wait_ended()
    assert guard.attempts == []
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Hi, how can I help?"}


# -- SSRF: webhook tools refuse loopback/private targets by default ---------------------------------------

PRIVATE_TARGETS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.7/hook",
    "http://192.168.1.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost/hook",
    "http://0.0.0.0/hook",
]


async def test_webhook_tools_refuse_private_targets_in_a_whole_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATTER_ALLOW_PRIVATE_WEBHOOKS", raising=False)
    hook = FakeWebhookTool()
    guard = SocketGuard()
    async with running(hook.app) as hook_srv:
        targets = [hook_srv.http_url + "/hook", *PRIVATE_TARGETS]  # the first one is a live server
        tools = [
            Tool(
                name=f"probe_{i}",
                description="Looks something up",
                parameters={"type": "object", "properties": {}},
                webhook_url=url,
            )
            for i, url in enumerate(targets)
        ]
        calls = [(t.name, "{}") for t in tools]
        with guard.installed(monkeypatch):
            async with call_harness(
                utterances=["Look it up"],
                replies=[Reply(tool_calls=calls), "Sorry, I could not look that up."],
                agent_kwargs={"tools": tools},
            ) as h:
                call = await h.dial()
                await call.wait_for_agent_audio(timeout=5)
                await call.wait_agent_quiet(quiet_ms=300, timeout=10)
                await call.say_tone(500)
                await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
                await call.wait_agent_quiet(quiet_ms=300, timeout=10)
                await call.hangup()
                await h.wait_ended()

    assert hook.requests == []  # the loopback server was never called
    assert guard.attempts == []  # and no private address was even dialled or looked up
    second = h.llm.requests[1]["messages"]
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in second if m["role"] == "tool"}
    assert len(results) == len(targets)
    for payload in results.values():
        assert payload.get("fallback") is True
        assert "error" in payload
    assert h.ended[0]["transcript"][-1] == {"role": "assistant", "text": "Sorry, I could not look that up."}


# -- per-IP media socket cap (API.md B.1) ------------------------------------------------------------------

CAP = 10


async def _open_media_socket(url: str, headers: dict[str, str]) -> Any:
    """A media socket, or the refusal: ``("refused", status)`` / ``("closed", code)``."""
    try:
        ws = await connect(url, additional_headers=headers, open_timeout=5, close_timeout=1)
    except InvalidStatus as exc:
        return ("refused", exc.response.status_code)
    try:
        await asyncio.wait_for(ws.recv(), 0.3)
    except ConnectionClosed:
        return ("closed", ws.close_code)
    except TimeoutError:
        pass
    return ws


async def test_at_most_ten_media_sockets_per_client_ip_even_with_forged_forwarded_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="getpatter.server")
    async with call_harness() as h:
        opened: list[Any] = []
        try:
            for i in range(CAP):
                ws = await _open_media_socket(
                    f"{h.server.ws_url}/ws/stream/{new_sid('CA')}", {"X-Forwarded-For": f"203.0.113.{i + 1}"}
                )
                assert not isinstance(ws, tuple), f"socket {i + 1} of {CAP} refused: {ws}"
                opened.append(ws)
            # The 11th, claiming yet another client address, must still be refused (1008 / 403 before accept).
            extra = await _open_media_socket(
                f"{h.server.ws_url}/ws/stream/{new_sid('CA')}", {"X-Forwarded-For": "198.51.100.77"}
            )
            if not isinstance(extra, tuple):
                opened.append(extra)
            assert isinstance(extra, tuple) and extra in (("refused", 403), ("closed", 1008)), extra
            # From a loopback peer the refusal says how to lift the cap behind a proxy or tunnel.
            assert any("PATTER_MAX_SOCKETS_PER_IP" in r.getMessage() for r in caplog.records)
            # Health is unaffected and, once one socket closes, a new one is accepted again.
            await opened.pop().close()
            await asyncio.sleep(0.2)
            again = await _open_media_socket(f"{h.server.ws_url}/ws/stream/{new_sid('CA')}", {})
            assert not isinstance(again, tuple), again
            opened.append(again)
        finally:
            for ws in opened:
                with contextlib.suppress(Exception):
                    await ws.close()
