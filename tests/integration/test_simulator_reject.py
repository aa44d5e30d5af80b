"""The public phone simulator reports a server's refusal as a refusal, not as a malformed answer."""

from __future__ import annotations

import asyncio

import pytest

from getpatter.simulator import CallRejected, PhoneSimulator
from tests.fakes._patience import patient
from tests.integration.harness import PUBLIC_HOST, call_harness


async def test_a_server_at_its_cap_rejects_the_simulated_call_busy_and_takes_it_once_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATTER_MAX_LOOP_LAG_MS", "0")  # only the cap decides here
    async with call_harness(
        utterances=["hello"], replies=["Hi."], serve_kwargs={"max_concurrent_calls": 1}
    ) as h:
        # The simulator signs as the account the server trusts (the fake carrier's).
        simulator = PhoneSimulator(account_sid=h.twilio.account_sid, auth_token=h.twilio.auth_token)
        first = await h.dial()
        await first.wait_for_agent_audio(timeout=10)

        with pytest.raises(CallRejected) as refused:
            await simulator.dial(h.server.http_url, PUBLIC_HOST)
        assert refused.value.reason == "busy"
        assert simulator.calls == {}  # no media socket was opened for it

        await first.hangup()
        await h.wait_ended(count=1)
        call = await asyncio.wait_for(simulator.dial(h.server.http_url, PUBLIC_HOST), patient(10))
        assert list(simulator.calls.values()) == [call]
        await call.hang_up()
        await h.wait_ended(count=2, timeout=15)
    assert [end["call_id"] for end in h.ended] == [first.sid, call.call_sid]
