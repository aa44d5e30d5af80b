"""Attack 5 of issue 18 (the part at the edge): a CallSid with punctuation raised an unhandled traceback
and any length was accepted. Ids are now checked by carrier format where they enter: webhooks answer
400, media sockets are closed before accept (path) or never started (``start`` frame), with no traceback.
(A live call's id taken over by a second socket is issue 17's signed stream tokens, tested there.)
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote, urlencode

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from getpatter.carriers.telnyx.call_ids import is_telnyx_call_control_id
from getpatter.carriers.twilio.call_ids import is_twilio_call_sid
from tests.fakes.twilio import new_sid, twilio_signature
from tests.integration.harness import PUBLIC_HOST, call_harness
from tests.reliability._support import RawStream

BAD_SIDS = ["CA!@#$%^&*()", "CA" + "\u00e9" * 32, "CA" + "a" * 3000, "CA../../etc", "CA" + "0" * 31 + "g"]


def test_carrier_formats() -> None:
    assert is_twilio_call_sid(new_sid("CA")) and is_twilio_call_sid("CA" + "AB" * 16)
    assert not any(is_twilio_call_sid(s) for s in [*BAD_SIDS, "", "CA", new_sid("MZ"), None])
    assert is_telnyx_call_control_id("v3:AbC-_d") and is_telnyx_call_control_id("v2:T02llQ/+a==")
    assert not any(is_telnyx_call_control_id(s) for s in ["", "a b", "v3:\u00e9", "x" * 257, "a\nb", 7])


async def test_bad_call_ids_get_clean_refusals_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with call_harness() as h:
        state = h.phone._state
        assert state is not None
        async with httpx.AsyncClient(timeout=20) as client:
            for sid in BAD_SIDS:
                form = {"CallSid": sid, "From": "+15550001111", "To": "+15550002222"}
                url = f"https://{PUBLIC_HOST}/webhooks/twilio/voice"
                headers = {
                    "X-Twilio-Signature": twilio_signature(h.twilio.auth_token, url, list(form.items()))
                }
                response = await client.post(
                    h.server.http_url + "/webhooks/twilio/voice", content=urlencode(form), headers=headers
                )
                assert response.status_code == 400, (sid, response.status_code)
        for sid in BAD_SIDS[:3]:
            with pytest.raises(InvalidStatus):
                async with connect(f"{h.server.ws_url}/ws/stream/{quote(sid, safe='')}", open_timeout=10):
                    pass
        # A well-formed path, but a ``start`` whose callSid is not one: the call never starts.
        for sid in BAD_SIDS[:2]:
            stream = await RawStream.open(h.server, new_sid("CA"))
            stream.call_sid = sid
            await stream.start()
            await asyncio.sleep(0.3)
            assert all(s.ctx is None for s in state.sessions.values())
            await stream.close()
        # And the server still answers a real call.
        call = await h.dial()
        await call.wait_for_agent_audio(timeout=15)
        await call.hangup()
        await h.wait_ended()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage()[:200] for r in errors]
    assert [e["call_id"] for e in h.ended] == [call.sid]
