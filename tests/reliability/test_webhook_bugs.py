"""Webhook and signature inputs that currently break the product (each an xfail with the bug's cause).

Kept apart from ``test_hostile_webhooks.py`` on purpose: pytest re-parses a failing test's module to show
its source, and CPython 3.11.7 can raise ``SystemError: AST constructor recursion depth mismatch`` while
parsing that larger, deeply nested module at a deep stack, turning an expected xfail into INTERNALERROR.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import httpx

from getpatter.carriers.twilio.signature import verify_signature
from tests.reliability.test_hostile_webhooks import (  # noqa: F401  (module fixtures, used by name)
    PUBLIC_HOST,
    FakeTelnyx,
    FakeTwilio,
    Patter,
    Running,
    _signed_headers,
    _telnyx_post,
    client,
    telnyx_unsigned,
    twilio_server,
)


def test_twilio_verify_signature_with_a_non_ascii_body_hash_is_false_not_an_exception() -> None:
    url = f"https://{PUBLIC_HOST}/webhooks/twilio/voice?bodySHA256=%C3%A9"
    assert verify_signature("tok", url, [], "sig", body=b"{}") is False


def test_signed_status_callback_with_a_unicode_digit_sequence_number_is_not_a_500(
    twilio_server: tuple[Running, FakeTwilio, Patter],  # noqa: F811
    client: httpx.Client,  # noqa: F811
) -> None:
    server, fake, _ = twilio_server
    path = "/webhooks/twilio/status"
    body = urlencode({"CallSid": "CA" + "4" * 32, "CallStatus": "ringing", "SequenceNumber": "\u00b2"})
    response = client.post(
        server.http_url + path, content=body, headers=_signed_headers(fake.auth_token, path, "", body)
    )
    assert response.status_code < 500


def test_telnyx_webhook_with_a_deeply_nested_client_state_is_not_a_500(
    telnyx_unsigned: tuple[Running, FakeTelnyx],  # noqa: F811
    client: httpx.Client,  # noqa: F811
) -> None:
    server, _ = telnyx_unsigned
    client_state = base64.b64encode(b"[" * 6000).decode()
    assert len(client_state) <= 8192
    envelope = {
        "data": {
            "event_type": "call.answered",
            "id": "00000000-0000-0000-0000-000000000001",
            "payload": {"call_control_id": "v3:abc", "client_state": client_state},
        }
    }
    response = _telnyx_post(
        client, server, json.dumps(envelope).encode(), {"Content-Type": "application/json"}
    )
    assert response.status_code < 500
