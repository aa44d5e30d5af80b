"""``serve(recording=True, voicemail_message=...)`` on a real port, over both carriers.

Every call is recorded by the carrier once its media starts (Twilio ``Recordings.json`` with a status
callback, Telnyx ``record_start``); the carrier's recording callback becomes a ``RecordingSaved`` event
on the server bus. ``serve(voicemail_message=...)`` is the default message for outbound calls with AMD.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from getpatter import Patter
from getpatter.call.progress import RecordingSaved
from getpatter.carriers.telnyx.config import Telnyx
from getpatter.carriers.twilio.config import Twilio
from getpatter.errors import PatterConfigError
from getpatter.stt.deepgram import DeepgramSTT
from getpatter.tts.elevenlabs import ElevenLabsTTS
from tests.fakes.deepgram import FakeDeepgram
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.server import running
from tests.fakes.telnyx import FakeTelnyx
from tests.fakes.twilio import FakeTwilio

HOST = "agent.example.test"
NUMBER = "+15550002222"
DEFAULT_VOICEMAIL = "Sorry we missed you. This is Acme, please call us back."


@contextlib.asynccontextmanager
async def _serving(phone: Patter, **serve_kwargs: Any) -> AsyncIterator[tuple[str, list[RecordingSaved]]]:
    """``phone.serve(...)`` on a free port with fake STT/TTS; yields its base URL and the recordings."""
    deepgram, tts = FakeDeepgram(), FakeElevenLabs()
    async with running(deepgram.app) as dg, running(tts.app) as el:
        agent = phone.agent(
            "unused",
            stt=DeepgramSTT(api_key=deepgram.api_key, base_url=dg.ws_url),
            tts=ElevenLabsTTS(api_key=tts.api_key, base_url=el.http_url),
            first_message="Hello there.",
        )
        serving = asyncio.create_task(
            phone.serve(agent, port=0, recording=True, on_message=lambda e: "ok", **serve_kwargs)
        )
        while phone._runner is None:  # serve() creates the runner right away
            await asyncio.sleep(0.01)
        port = await asyncio.wait_for(phone.ready, 5)
        saved: list[RecordingSaved] = []
        assert phone._state is not None
        phone._state.events.on(RecordingSaved, saved.append)
        try:
            yield f"http://127.0.0.1:{port}", saved
        finally:
            await phone.disconnect()
            await asyncio.wait_for(serving, 10)


async def _until(predicate: Any, timeout: float = 5.0) -> Any:
    async def poll() -> Any:
        while not (value := predicate()):
            await asyncio.sleep(0.01)
        return value

    return await asyncio.wait_for(poll(), timeout)


async def test_twilio_records_every_call_and_leaves_the_server_default_voicemail() -> None:
    twilio = FakeTwilio(owned_numbers=(NUMBER,))
    async with running(twilio.app) as tw:
        phone = Patter(
            carrier=Twilio(twilio.account_sid, twilio.auth_token, base_url=tw.http_url),
            phone_number=NUMBER,
            webhook_url=HOST,
        )
        async with _serving(phone, voicemail_message=DEFAULT_VOICEMAIL) as (base, saved):
            inbound = await twilio.start_inbound_call(base, HOST)
            [start] = await _until(lambda: twilio.requests_to(f"/Calls/{inbound.sid}/Recordings.json"))
            assert start.method == "POST" and start.status == 201
            assert start.form == {
                "RecordingStatusCallback": f"https://{HOST}/webhooks/twilio/recording",
                "RecordingStatusCallbackMethod": "POST",
            }
            recording_sid = twilio.recordings[0]["sid"]
            form = {
                "AccountSid": twilio.account_sid,
                "CallSid": inbound.sid,
                "RecordingSid": recording_sid,
                "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{recording_sid}",
                "RecordingStatus": "completed",
                "RecordingDuration": "7",
                "RecordingChannels": "1",
                "RecordingSource": "StartCallRecordingAPI",
            }
            response = await twilio.post_webhook(base, HOST, "/webhooks/twilio/recording", form)
            assert response.status_code == 204
            forged = await twilio.post_webhook(base, HOST, "/webhooks/twilio/recording", form, signature="x")
            assert forged.status_code == 403
            await inbound.hangup()

            # Outbound with AMD and no message of its own: the server default is left on the machine.
            call_id = await phone.call("+15550003333", machine_detection=True)
            outbound = await twilio.answer_call(call_id, base, HOST)
            await _until(lambda: twilio.requests_to(f"/Calls/{call_id}/Recordings.json"))
            amd = {"AccountSid": twilio.account_sid, "CallSid": call_id, "AnsweredBy": "machine_end_other"}
            assert (await twilio.post_webhook(base, HOST, "/webhooks/twilio/amd", amd)).status_code == 204
            await outbound.wait_closed(timeout=5)
    await twilio.aclose()

    assert len(saved) == 1
    event = saved[0]
    assert (event.call_id, event.carrier, event.recording_id, event.status) == (
        inbound.sid,
        "twilio",
        recording_sid,
        "completed",
    )
    assert event.url == form["RecordingUrl"] and event.duration_seconds == 7.0
    assert event.details["RecordingSource"] == "StartCallRecordingAPI"
    [update] = twilio.requests_to(f"/Calls/{call_id}.json", "POST")
    assert update.form["Twiml"] == (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{DEFAULT_VOICEMAIL}</Say><Hangup/></Response>'
    )
    with pytest.raises(PatterConfigError, match="needs the server running"):
        await phone.call("+15550003333")  # the server is gone


async def test_telnyx_records_every_call_and_reports_the_saved_recording(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    telnyx = FakeTelnyx()
    async with running(telnyx.app) as tx:
        monkeypatch.setenv("TELNYX_BASE_URL", tx.http_url + "/v2")
        carrier = Telnyx(
            api_key=telnyx.api_key, connection_id=telnyx.connection_id, public_key=telnyx.public_key
        )
        phone = Patter(carrier=carrier, phone_number=NUMBER, webhook_url=HOST)
        async with _serving(phone) as (base, saved):
            call = await telnyx.start_inbound_call(base, HOST)
            [start] = await _until(lambda: telnyx.commands("record_start"))
            assert start.call_control_id == call.call_control_id and start.status == 200
            assert start.body == {"format": "wav", "channels": "single"}
            urls = {"mp3": "https://rec.example/a.mp3", "wav": "https://rec.example/a.wav"}
            event = telnyx.envelope(
                "call.recording.saved",
                call,
                recording_urls=urls,
                public_recording_urls={},
                recording_started_at="2026-01-01T12:00:00.000000Z",
                recording_ended_at="2026-01-01T12:00:42.500000Z",
                channels="single",
            )
            assert (await telnyx.post_webhook(base, event)).status_code == 200
            assert (await telnyx.post_webhook(base, event)).status_code == 200  # a retry is deduplicated
            await call.hangup()
        await telnyx.aclose()

    assert len(saved) == 1
    assert (saved[0].call_id, saved[0].carrier, saved[0].url) == (call.call_control_id, "telnyx", urls["wav"])
    assert saved[0].duration_seconds == 42.5
    assert saved[0].details["recording_urls"] == urls
