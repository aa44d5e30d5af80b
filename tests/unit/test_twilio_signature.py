"""X-Twilio-Signature against the worked examples of twilio.md §5.4."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from starlette.datastructures import FormData

from getpatter.carriers.twilio.signature import compute_signature, verify_signature

URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TOKEN = "my_auth_token_0123456789abcdef"
VOICE_URL = "https://abc-def.trycloudflare.com/twilio/voice"
VOICE_PARAMS = {
    "AccountSid": "AC00000000000000000000000000000001",
    "ApiVersion": "2010-04-01",
    "CallSid": "CA00000000000000000000000000000002",
    "CallStatus": "ringing",
    "Called": "+15550002222",
    "Caller": "+15550001111",
    "Direction": "inbound",
    "From": "+15550001111",
    "To": "+15550002222",
}


def test_official_vector() -> None:
    assert compute_signature("12345", URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert verify_signature("12345", URL, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_port_variants_are_both_accepted() -> None:
    with_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert compute_signature("12345", with_443, PARAMS) == "kvajT1Ptam85bY51eRf/AJRuM3w="
    # Twilio signed with :443 but the server rebuilt the URL without a port, and the reverse.
    assert verify_signature("12345", URL, PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    assert verify_signature("12345", with_443, PARAMS, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    http80 = "http://mycompany.com:80/myapp.php?foo=1&bar=2"
    assert compute_signature("12345", http80, PARAMS) == "0ZXoZLH/DfblKGATFgpif+LLRf4="
    assert verify_signature(
        "12345", "http://mycompany.com/myapp.php?foo=1&bar=2", PARAMS, "0ZXoZLH/DfblKGATFgpif+LLRf4="
    )


def test_repeated_keys_sign_distinct_sorted_values_in_every_input_shape() -> None:
    expected = "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    pairs: list[tuple[str, Any]] = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ]
    assert compute_signature("12345", URL, pairs) == expected
    assert compute_signature("12345", URL, FormData(pairs)) == expected
    assert (
        compute_signature("12345", URL, {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234"]})
        == expected
    )
    assert verify_signature("12345", URL, FormData(pairs), expected)


def test_json_body_uses_body_sha256_and_no_params() -> None:
    body = b'{"property": "value", "boolean": true}'
    digest = hashlib.sha256(body).hexdigest()
    assert digest == "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
    url = f"{URL}&bodySHA256={digest}"
    assert compute_signature("12345", url) == "a9nBmqA0ju/hNViExpshrM61xv4="
    assert verify_signature("12345", url, None, "a9nBmqA0ju/hNViExpshrM61xv4=", body=body)
    assert not verify_signature("12345", url, None, "a9nBmqA0ju/hNViExpshrM61xv4=", body=body + b" ")
    assert not verify_signature("12345", url, None, "a9nBmqA0ju/hNViExpshrM61xv4=")


def test_realistic_voice_webhook_and_websocket_handshake() -> None:
    assert compute_signature(TOKEN, VOICE_URL, VOICE_PARAMS) == "xKlfe6TvSWKj+Z+ti3CDc29aiLA="
    assert verify_signature(TOKEN, VOICE_URL, VOICE_PARAMS, "gVD2rQAArL6WUqNmBS0sejutb+U=")
    wss = "wss://abc-def.trycloudflare.com/twilio/stream"
    assert compute_signature(TOKEN, wss, {}) == "Q2lNBJW81wZAjH6PZ3Iph/x9MN8="
    assert verify_signature(TOKEN, wss, None, "Q2lNBJW81wZAjH6PZ3Iph/x9MN8=")
    # The same path signed with https:// is not a valid wss signature.
    assert not verify_signature(
        TOKEN, wss, None, compute_signature(TOKEN, VOICE_URL.replace("voice", "stream"))
    )


@pytest.mark.parametrize(
    ("token", "url", "params", "sig"),
    [
        (TOKEN, VOICE_URL, VOICE_PARAMS, ""),
        (TOKEN, VOICE_URL, VOICE_PARAMS, None),
        ("wrong-token", VOICE_URL, VOICE_PARAMS, "xKlfe6TvSWKj+Z+ti3CDc29aiLA="),
        ("", VOICE_URL, VOICE_PARAMS, "xKlfe6TvSWKj+Z+ti3CDc29aiLA="),
        (TOKEN, VOICE_URL + "/", VOICE_PARAMS, "xKlfe6TvSWKj+Z+ti3CDc29aiLA="),  # trailing slash matters
        (
            TOKEN,
            VOICE_URL,
            {**VOICE_PARAMS, "Extra": ""},
            "xKlfe6TvSWKj+Z+ti3CDc29aiLA=",
        ),  # empty params count
        (TOKEN, VOICE_URL, {**VOICE_PARAMS, "To": "+15550002222 "}, "xKlfe6TvSWKj+Z+ti3CDc29aiLA="),
        (TOKEN, "http://localhost:8000/twilio/voice", VOICE_PARAMS, "xKlfe6TvSWKj+Z+ti3CDc29aiLA="),
        (TOKEN, VOICE_URL, VOICE_PARAMS, "xKlfe6TvSWKj+Z+ti3CDc29aiLA=\u00e9"),
    ],
)
def test_rejections(token: str, url: str, params: dict[str, str], sig: str | None) -> None:
    assert not verify_signature(token, url, params, sig)
