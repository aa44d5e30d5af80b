"""The Call Control client against the strict fake Telnyx on 127.0.0.1: field-by-field request checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from getpatter.carriers.telnyx.rest import (
    TelnyxApiError,
    TelnyxCallControl,
    TelnyxRestClient,
    resolve_base_url,
    stream_params,
)
from getpatter.errors import AuthenticationError, PatterConnectionError, RateLimitError
from tests.fakes.server import running
from tests.fakes.telnyx import FakeTelnyx, FakeTelnyxCall

STREAM = "wss://agent.example.test/ws/telnyx/stream/x"


@dataclass
class Env:
    fake: FakeTelnyx
    client: TelnyxRestClient
    call: FakeTelnyxCall


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = FakeTelnyx()
    async with running(fake.app) as srv:
        client = TelnyxRestClient(fake.api_key, base_url=srv.http_url + "/v2")
        yield Env(fake, client, fake.new_inbound())
        await client.close()
        await fake.aclose()


async def test_answer_sends_bearer_json_and_bidirectional_stream_fields(env: Env) -> None:
    result = await env.client.answer(env.call.call_control_id, stream_url=STREAM, client_state="eyJhIjoxfQ==")
    assert result == {"result": "ok"}
    [req] = env.fake.requests
    assert req.authorization == f"Bearer {env.fake.api_key}"
    assert req.content_type.startswith("application/json")
    assert req.path == f"/v2/calls/{env.call.call_control_id}/actions/answer"
    assert req.body == {
        "stream_url": STREAM,
        "stream_track": "inbound_track",
        "stream_codec": "L16",
        "stream_bidirectional_mode": "rtp",
        "stream_bidirectional_codec": "L16",
        "stream_bidirectional_sampling_rate": 16000,
        "client_state": "eyJhIjoxfQ==",
    }
    assert env.call.state == "answered"


async def test_every_action_body(env: Env) -> None:
    ccid = env.call.call_control_id
    c = env.client
    await c.answer(ccid, stream_url=STREAM, stream_codec="PCMU")
    await c.streaming_start(ccid, stream_url=STREAM, stream_codec="PCMU", custom_parameters={"k": "v"})
    await c.streaming_stop(ccid, stream_id="s1")
    await c.record_start(ccid, format="mp3", channels="dual", play_beep=False, max_length=60)
    await c.record_stop(ccid)
    await c.send_dtmf(ccid, "12#w*", duration_millis=250)
    await c.transfer(ccid, "+15557654321", from_="+15550002222", timeout_secs=30)
    bodies = [(r.action, r.body, r.status) for r in env.fake.requests]
    assert bodies == [
        ("answer", stream_params(STREAM, stream_codec="PCMU"), 200),
        (
            "streaming_start",
            {
                **stream_params(STREAM, stream_codec="PCMU"),
                "custom_parameters": [{"name": "k", "value": "v"}],
            },
            200,
        ),
        ("streaming_stop", {"stream_id": "s1"}, 200),
        ("record_start", {"format": "mp3", "channels": "dual", "play_beep": False, "max_length": 60}, 200),
        ("record_stop", {}, 200),
        ("send_dtmf", {"digits": "12#w*", "duration_millis": 250}, 200),
        ("transfer", {"to": "+15557654321", "from": "+15550002222", "timeout_secs": 30}, 200),
    ]
    assert stream_params(STREAM)["stream_bidirectional_sampling_rate"] == 16000
    assert stream_params(STREAM, stream_codec="PCMU")["stream_bidirectional_sampling_rate"] == 8000


async def test_dial(env: Env) -> None:
    data = await env.client.dial(
        "+15557654321",
        "+15550002222",
        connection_id=env.fake.connection_id,
        stream_url=STREAM,
        timeout_secs=25,
        answering_machine_detection="greeting_end",
    )
    assert data["call_control_id"].startswith("v3:") and data["is_alive"] is False
    [req] = env.fake.commands("dial")
    assert req.path == "/v2/calls"
    assert req.body == {
        "connection_id": env.fake.connection_id,
        "to": "+15557654321",
        "from": "+15550002222",
        **stream_params(STREAM),
        "timeout_secs": 25,
        "answering_machine_detection": "greeting_end",
    }


async def test_error_mapping(env: Env) -> None:
    ccid = env.call.call_control_id
    env.fake.inject_error(429)
    with pytest.raises(RateLimitError):
        await env.client.hangup(ccid)
    env.fake.inject_error(503)
    with pytest.raises(PatterConnectionError):
        await env.client.hangup(ccid)
    with pytest.raises(TelnyxApiError) as unknown:
        await env.client.hangup("v3:nope")
    assert unknown.value.status == 404 and unknown.value.call_gone
    await env.client.hangup(ccid)
    with pytest.raises(TelnyxApiError) as gone:
        await env.client.hangup(ccid)
    assert gone.value.status == 422 and gone.value.telnyx_codes == ("90018",) and gone.value.call_gone
    assert "90018" in str(gone.value) and "already ended" in str(gone.value)


async def test_bad_key_is_an_authentication_error_without_the_key(env: Env) -> None:
    bad = TelnyxRestClient("KEYwrong-secret", base_url=str(env.client._client().base_url))
    with pytest.raises(AuthenticationError) as exc:
        await bad.hangup(env.call.call_control_id)
    await bad.close()
    assert "KEYwrong-secret" not in str(exc.value) and "KEYwrong-secret" not in repr(bad)
    assert env.fake.api_key not in repr(env.client)


async def test_transport_failure_is_a_connection_error() -> None:
    client = TelnyxRestClient("KEY", base_url="http://127.0.0.1:9/v2", timeout=2)
    with pytest.raises(PatterConnectionError):
        await client.hangup("v3:x")
    await client.close()


async def test_call_control_hangup_is_idempotent_and_transfer_checks_e164(env: Env) -> None:
    control = TelnyxCallControl(env.client, env.call.call_control_id)
    await control.hangup()
    await control.hangup()  # 422/90018: already over, fine
    assert [r.status for r in env.fake.commands("hangup")] == [200, 422]
    with pytest.raises(ValueError):
        await control.transfer("555-1234")
    other = TelnyxCallControl(env.client, env.fake.new_inbound().call_control_id)
    await other.send_dtmf("1", delay_ms=50)
    assert env.fake.commands("send_dtmf")[0].body == {"digits": "1", "duration_millis": 100}


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.answer("v3:x", stream_url="ws://insecure/x"),
        lambda c: c.answer("v3:x", stream_url=STREAM, stream_codec="OPUS"),
        lambda c: c.answer("v3:x", stream_url=STREAM, stream_track="sideways"),
        lambda c: c.answer("v3:x", stream_url=STREAM, client_state="not base64!"),
        lambda c: c.answer("", stream_url=STREAM),
        lambda c: c.send_dtmf("v3:x", "12x"),
        lambda c: c.record_start("v3:x", format="ogg"),
        lambda c: c.transfer("v3:x", "12345"),
        lambda c: c.dial("+15550001111", "nope", connection_id="1"),
    ],
)
async def test_local_validation_happens_before_any_request(call, env: Env) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        await call(env.client)
    assert env.fake.requests == []


def test_resolve_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELNYX_BASE_URL", raising=False)
    assert resolve_base_url(object()) == "https://api.telnyx.com/v2"
    monkeypatch.setenv("TELNYX_BASE_URL", "http://127.0.0.1:1/v2")
    assert resolve_base_url(object()) == "http://127.0.0.1:1/v2"


async def test_reject_refuses_a_parked_call_with_its_cause_and_never_answers(env: Env) -> None:
    assert await env.client.reject(env.call.call_control_id) == {"result": "ok"}
    [req] = env.fake.requests
    assert req.path == f"/v2/calls/{env.call.call_control_id}/actions/reject"
    assert req.body == {"cause": "USER_BUSY"}
    assert env.call.state == "hangup" and env.call.commands == [("reject", {"cause": "USER_BUSY"})]
    # Gone now: a second refusal is Telnyx's "call has already ended".
    with pytest.raises(TelnyxApiError) as gone:
        await env.client.reject(env.call.call_control_id, cause="CALL_REJECTED")
    assert gone.value.call_gone


async def test_reject_takes_only_telnyx_causes(env: Env) -> None:
    with pytest.raises(ValueError, match="reject cause must be one of"):
        await env.client.reject(env.call.call_control_id, cause="BUSY")
    assert env.fake.requests == []
