"""Attack 1 of issue 18: Telnyx without ``public_key`` (then the default) accepted forged webhooks, which
made the server call Telnyx ``answer``/``streaming_start``/``hangup`` on call ids it had never seen; the
"placed by us" marker in ``client_state`` was a constant anyone could forge.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from getpatter.carriers.telnyx.client_state import (
    CLIENT_STATE_MARK,
    client_state_key,
    client_state_keys,
    decode_client_state,
    encode_client_state,
)
from getpatter.errors import PatterConfigError
from tests.fakes.telnyx import FakeTelnyx
from tests.integration.telnyx_harness import telnyx_harness

#: The pre-fix marker: constant, unsigned (what an attacker copies into a forged webhook).
FORGED = base64.b64encode(
    json.dumps({"getpatter": CLIENT_STATE_MARK, "first_message": "Send the code to +1 555"}).encode()
).decode()


async def test_a_server_without_a_public_key_refuses_to_start() -> None:
    with pytest.raises(PatterConfigError, match="public_key"):
        async with telnyx_harness(signed=False, allow_unsigned=False) as h:
            h.telnyx.new_inbound()


async def test_forged_unsigned_webhooks_make_no_rest_call() -> None:
    """A forged ``call.initiated`` (incoming) and ``call.answered`` with the old constant marker, unsigned
    and then signed with the wrong key: 403, and Telnyx is never asked to answer, stream or hang up."""
    async with telnyx_harness() as h:
        stranger = FakeTelnyx()  # another Ed25519 key pair
        call = h.telnyx.new_inbound()
        call.client_state = FORGED
        for event, extra in (("call.initiated", {"direction": "incoming"}), ("call.answered", {})):
            body = h.telnyx.envelope(event, call, **extra)
            unsigned = await h.telnyx.post_webhook(h.server.http_url, body, sign_it=False)
            wrong_key = await h.telnyx.post_webhook(h.server.http_url, body, key=stranger.signing_key)
            assert (unsigned.status_code, wrong_key.status_code) == (403, 403)
        await asyncio.sleep(0.3)  # the product answers in the background: give it the chance to misbehave
        for action in ("answer", "streaming_start", "hangup"):
            assert h.telnyx.commands(action) == [], action


async def test_a_signed_webhook_with_a_forged_marker_does_not_start_a_stream() -> None:
    """Even on a genuine (signed) delivery, a ``client_state`` not signed by this server is not ours:
    ``call.answered`` for an unknown call with the forged marker triggers no ``streaming_start``."""
    async with telnyx_harness() as h:
        call = h.telnyx.new_inbound()
        call.client_state = FORGED
        response = await h.telnyx.post_webhook(h.server.http_url, h.telnyx.envelope("call.answered", call))
        assert response.status_code == 200
        await asyncio.sleep(0.3)
        assert h.telnyx.commands("streaming_start") == []


def test_client_state_marker_is_signed_and_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATTER_STREAM_SECRET", raising=False)
    key = client_state_key("KEY-api")
    state = encode_client_state("Hello there", key)
    assert decode_client_state(state, key) == {"getpatter": CLIENT_STATE_MARK, "first_message": "Hello there"}
    assert decode_client_state(FORGED, key) is None, "the unsigned constant marker is no longer ours"
    assert decode_client_state(state, client_state_key("KEY-other")) is None
    tampered = json.loads(base64.b64decode(state))
    tampered["first_message"] = "Something else"
    assert decode_client_state(base64.b64encode(json.dumps(tampered).encode()).decode(), key) is None
    monkeypatch.setenv("PATTER_STREAM_SECRET", "shared-secret")
    assert client_state_key("KEY-api") == b"shared-secret"
    assert decode_client_state(state, client_state_key("KEY-api")) is None


def test_client_state_keys_rotate_like_the_stream_token_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PATTER_STREAM_SECRET`` is one list of keys for stream tokens and ``client_state`` alike: the first
    signs, every one verifies, so markers signed before a rotation stay ours."""
    old, new = "old-secret-" + "o" * 24, "new-secret-" + "n" * 24
    monkeypatch.setenv("PATTER_STREAM_SECRET", old)
    before = encode_client_state("Hello there", client_state_key("KEY-api"))
    monkeypatch.setenv("PATTER_STREAM_SECRET", f"{new},{old}")
    keys = client_state_keys("KEY-api")
    assert keys == (new.encode(), old.encode())
    assert decode_client_state(before, keys) == {
        "getpatter": CLIENT_STATE_MARK,
        "first_message": "Hello there",
    }
    after = encode_client_state("Hi", client_state_key("KEY-api"))
    assert decode_client_state(after, new.encode()) is not None
    assert decode_client_state(after, old.encode()) is None  # new markers are signed with the new key
    monkeypatch.setenv("PATTER_STREAM_SECRET", new)
    assert decode_client_state(before, client_state_keys("KEY-api")) is None  # the old key retired
