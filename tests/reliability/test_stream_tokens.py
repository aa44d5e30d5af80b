"""Only real calls open media sockets: missing, forged, expired, other-call and replayed stream tokens are
refused with 1008 before any vendor connection, logged once per source; a live call cannot be taken over."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from getpatter.server.stream_tokens import StreamTokenError, StreamTokens
from tests.fakes.twilio import new_sid, parse_connect_stream
from tests.integration.harness import Harness, call_harness
from tests.integration.telnyx_harness import telnyx_harness
from tests.reliability._support import RawStream, until

STREAM_LOGGER = "getpatter.server"


def vendor_connections(h: Harness) -> int:
    """Every vendor connection the product opened: STT sockets, LLM and TTS requests."""
    return len(h.deepgram.connections) + len(h.llm.requests) + len(h.tts.requests)


async def _refused(stream: RawStream) -> int | None:
    """Send ``connected`` + ``start`` and return the close code the server answers with."""
    await stream.start()
    await until(lambda: stream.ws.close_code is not None, timeout=15)
    code = stream.ws.close_code
    await stream.aclose()
    return code


def _refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == STREAM_LOGGER and r.levelno >= logging.WARNING and "refused" in r.getMessage()
    ]


async def test_sockets_without_a_valid_token_are_closed_before_any_vendor_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=STREAM_LOGGER)
    async with call_harness() as h:
        tokens = h.phone._state.stream_gate.tokens  # type: ignore[union-attr]
        real_sid = new_sid("CA")
        real = await h.stream_params(real_sid)
        cases: dict[str, tuple[str, dict[str, str]]] = {}
        sid = new_sid("CA")
        cases["missing"] = (sid, {"caller": "+15550001111"})
        cases["forged"] = (
            sid,
            {"stream_token": "v1.4102444800.bm9uY2U.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        )
        cases["expired"] = (sid, {"stream_token": tokens.mint(sid, "inbound", ttl_s=-1)})
        cases["other call"] = (new_sid("CA"), dict(real))  # a valid token, for another call id
        cases["other direction"] = (sid, {"stream_token": tokens.mint(sid, "outbound")})
        cases["garbage"] = (sid, {"stream_token": "x" * 5000})
        codes = {}
        for name, (call_sid, params) in cases.items():
            stream = await RawStream.open(h.server, call_sid)
            stream.params = params
            codes[name] = await _refused(stream)
        assert codes == dict.fromkeys(cases, 1008)
        assert vendor_connections(h) == 0
        assert h.ended == [] and h.phone.metrics_store.call_count == 0
        # One warning for the source (127.0.0.1), the rest counted quietly.
        assert len(_refusal_lines(caplog)) == 1
        assert h.phone._state.stream_gate.refusals.count("127.0.0.1") == len(cases)  # type: ignore[union-attr]
        # The token of the real call was not spent by the "other call" attempt: its call still runs.
        stream = await RawStream.open(h.server, real_sid)
        stream.params = real
        await stream.start()
        await until(lambda: stream.agent_media_count() > 0, timeout=10)
        await stream.stop()
        await h.wait_ended()
        await stream.aclose()
    assert [e["call_id"] for e in h.ended] == [real_sid]


async def test_a_token_opens_one_socket_and_a_live_call_cannot_be_taken_over() -> None:
    async with call_harness() as h:
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=5)
        connections = vendor_connections(h)
        # Replay: the very parameters the carrier sent, on a second socket, while the call is live.
        replay = await RawStream.open(h.server, call.sid)
        replay.params = dict(call.custom_params)
        assert await _refused(replay) == 1008
        # A second, freshly signed token for the same live call (the webhook delivered again): refused too.
        fresh = await RawStream.open(h.server, call.sid)
        fresh.params = await h.stream_params(call.sid)
        assert await _refused(fresh) == 1008
        assert vendor_connections(h) == connections  # the attempts opened nothing
        await call.say_tone(500)
        await call.wait_for_agent_audio(after=call.speech_onsets[-1], timeout=10)
        assert call.connected  # the real call is untouched
        await call.hangup()
        await h.wait_ended()
        # After the call: the spent token stays spent.
        late = await RawStream.open(h.server, call.sid)
        late.params = dict(call.custom_params)
        assert await _refused(late) == 1008
    assert len(h.ended) == 1


async def test_rotated_stream_secret_keeps_tokens_of_the_old_key_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = "old-secret-" + "o" * 24, "new-secret-" + "n" * 24
    monkeypatch.setenv("PATTER_STREAM_SECRET", f"{new},{old}")
    async with call_harness() as h:
        sid = new_sid("CA")
        stream = await RawStream.open(h.server, sid)
        stream.params = {"stream_token": StreamTokens([old]).mint(sid, "inbound")}  # minted before rotation
        await stream.start()
        await until(lambda: stream.agent_media_count() > 0, timeout=10)
        await stream.stop()
        await h.wait_ended()
        await stream.aclose()
        # And new answers are signed with the new key, not the carrier secret.
        fresh_sid = new_sid("CA")
        token = (await h.stream_params(fresh_sid))["stream_token"]
        StreamTokens([new]).verify(token, fresh_sid, "inbound")
        with pytest.raises(StreamTokenError):
            StreamTokens([old]).verify(token, fresh_sid, "inbound")
        with pytest.raises(StreamTokenError):
            StreamTokens([h.twilio.auth_token]).verify(token, fresh_sid, "inbound")
    assert len(h.ended) == 1


async def test_telnyx_stream_without_its_url_token_is_refused() -> None:
    async with telnyx_harness() as h:
        call = await h.dial()  # the fake follows the answer's stream_url, token included
        await call.wait_for_agent_audio(timeout=5)
        await call.hangup()
        await h.wait_ended()
        assert call.stream_url is not None and "stream_token=" in call.stream_url
        stt_before = len(h.deepgram.connections)
        parts = urlsplit(call.stream_url)
        query = dict(parse_qsl(parts.query))
        for bad in (
            {k: v for k, v in query.items() if k != "stream_token"},
            {**query, "stream_token": "v1.1.a.b"},
        ):
            url = f"{h.server.ws_url}{parts.path}?{urlencode(bad)}"
            async with connect(url, open_timeout=5, close_timeout=2) as ws:
                await ws.send('{"event":"connected","version":"1.0.0"}')
                start = {
                    "event": "start",
                    "stream_id": "S1",
                    "start": {
                        "call_control_id": call.call_control_id,
                        "media_format": {"encoding": "L16", "sample_rate": 16000, "channels": 1},
                    },
                }
                await ws.send(json.dumps(start))
                await until(lambda w=ws: w.close_code is not None, timeout=15)
                assert ws.close_code == 1008
        assert len(h.deepgram.connections) == stt_before
    assert len(h.ended) == 1


async def _unauthenticated_socket(server: Any, forwarded_for: str) -> Any:
    """Open a media socket that never sends ``start``; ``("refused", status)`` if the upgrade is refused."""
    url = f"{server.ws_url}/ws/stream/{new_sid('CA')}"
    try:
        return await connect(
            url, additional_headers={"X-Forwarded-For": forwarded_for}, open_timeout=10, close_timeout=1
        )
    except InvalidStatus as exc:
        return ("refused", exc.response.status_code)


async def test_behind_a_trusted_proxy_the_cap_keys_on_the_forwarded_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTER_TRUSTED_PROXIES", "127.0.0.1/32")
    async with call_harness() as h:
        h.phone._state.stream_gate.start_timeout_s = 120  # type: ignore[union-attr]  # none time out here
        opened: list[Any] = []
        try:
            for _ in range(10):  # one client behind the proxy fills its own cap...
                ws = await _unauthenticated_socket(h.server, "203.0.113.9")
                assert not isinstance(ws, tuple), ws
                opened.append(ws)
            extra = await _unauthenticated_socket(h.server, "203.0.113.9")
            assert extra == ("refused", 403)
            # ... while another client behind the same proxy, and real calls, go on.
            other = await _unauthenticated_socket(h.server, "198.51.100.4")
            assert not isinstance(other, tuple), other
            opened.append(other)
            call = await h.dial()
            await call.wait_for_agent_audio(timeout=10)
            await call.hangup()
            await h.wait_ended()
        finally:
            for ws in opened:
                with contextlib.suppress(Exception):
                    await ws.close()
    assert len(h.ended) == 1


async def test_a_dialled_calls_stream_token_opens_only_that_call() -> None:
    """An outbound stream's token is minted before the call has an id (the dial request carries it): the
    call record ties it to its call, so one dialled call's token cannot start another dialled call."""
    async with call_harness() as h:
        first = await h.phone.call("+15550003333")
        second = await h.phone.call("+15550004444")
        assert isinstance(first, str) and isinstance(second, str)
        creates = h.twilio.requests_to("/Calls.json", "POST")
        tokens = [parse_connect_stream(str(c.form["Twiml"]))[1]["stream_token"] for c in creates]
        assert len(tokens) == 2 and tokens[0] != tokens[1]
        # The first call's token, presented by a stream claiming to be the second call: refused.
        swapped = await RawStream.open(h.server, second, path="/ws/stream/outbound")
        swapped.params = {"direction": "outbound", "stream_token": tokens[0]}
        assert await _refused(swapped) == 1008
        assert vendor_connections(h) == 0 and h.phone.metrics_store.call_count == 0
        # Its own token starts it.
        own = await RawStream.open(h.server, second, path="/ws/stream/outbound")
        own.params = {"direction": "outbound", "stream_token": tokens[1]}
        await own.start()
        await until(lambda: own.agent_media_count() > 0, timeout=10)
        await own.stop()
        await h.wait_ended()
        await own.aclose()
    assert [e["call_id"] for e in h.ended] == [second]
