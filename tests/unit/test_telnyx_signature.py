"""Telnyx Ed25519 webhook signatures, checked against signatures made independently with ``cryptography``."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from getpatter.carriers.telnyx.signature import load_public_key, verify_webhook

# telnyx.md §4.3: a worked example (seed 00..1f), computed outside getpatter.
DOC_KEY = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
DOC_TS = "1700000000"
DOC_BODY = (
    b'{"data":{"event_type":"call.initiated","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","record_type":"event",'
    b'"payload":{"call_control_id":"v3:abc","direction":"incoming","from":"+15550001111","to":"+15550002222",'
    b'"state":"parked"}}}'
)
DOC_SIG = "5Zblz/HonEZT116NcyI0NqhsmWKnpPLBVoURDHlK/1h7wKH/wSqEFX7UBL6ccXv9DLN0d4uSZmlQYrYTGWgxDA=="
NOW = 1_800_000_000.0


def _pair() -> tuple[Ed25519PrivateKey, str]:
    sk = Ed25519PrivateKey.generate()
    pk = base64.b64encode(sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    return sk, pk


def _headers(sk: Ed25519PrivateKey, ts: str, body: bytes) -> dict[str, str]:
    sig = base64.b64encode(sk.sign(ts.encode() + b"|" + body)).decode()
    return {"telnyx-signature-ed25519": sig, "telnyx-timestamp": ts}


def test_documented_example_verifies() -> None:
    assert len(DOC_BODY) == 227
    headers = {"telnyx-signature-ed25519": DOC_SIG, "telnyx-timestamp": DOC_TS}
    assert verify_webhook(DOC_KEY, headers, DOC_BODY, now=1_700_000_000)
    assert not verify_webhook(DOC_KEY, headers, DOC_BODY + b" ", now=1_700_000_000)
    # Far outside the replay window today.
    assert not verify_webhook(DOC_KEY, headers, DOC_BODY)


def test_independent_signature_verifies_and_header_names_are_case_insensitive() -> None:
    sk, pk = _pair()
    body = b'{"data": {"event_type": "call.hangup"}}'
    headers = _headers(sk, str(int(NOW)), body)
    assert verify_webhook(pk, headers, body, now=NOW)
    upper = {
        "Telnyx-Signature-Ed25519": headers["telnyx-signature-ed25519"],
        "Telnyx-Timestamp": str(int(NOW)),
    }
    assert verify_webhook(pk, upper, body, now=NOW)


def test_forged_signatures_fail() -> None:
    sk, pk = _pair()
    other, _ = _pair()
    body = b'{"data": {}}'
    ts = str(int(NOW))
    assert not verify_webhook(pk, _headers(other, ts, body), body, now=NOW)  # someone else's key
    assert not verify_webhook(pk, _headers(sk, ts, body), body + b"x", now=NOW)  # body changed
    good = _headers(sk, ts, body)
    assert not verify_webhook(pk, {**good, "telnyx-timestamp": str(int(NOW) - 1)}, body, now=NOW)
    unsigned_ts = base64.b64encode(sk.sign(body)).decode()  # body alone, without "timestamp|"
    assert not verify_webhook(pk, {**good, "telnyx-signature-ed25519": unsigned_ts}, body, now=NOW)
    for junk in ("", "!!!", base64.b64encode(b"x" * 63).decode(), base64.b64encode(b"\0" * 64).decode()):
        assert not verify_webhook(pk, {**good, "telnyx-signature-ed25519": junk}, body, now=NOW)


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (-301, False), (30, True), (31, False), (0, True)])
def test_replay_window(offset: int, ok: bool) -> None:
    sk, pk = _pair()
    body = b"{}"
    ts = str(int(NOW) + offset)
    assert verify_webhook(pk, _headers(sk, ts, body), body, now=NOW) is ok


def test_missing_or_malformed_headers_and_keys() -> None:
    sk, pk = _pair()
    body = b"{}"
    headers = _headers(sk, str(int(NOW)), body)
    assert not verify_webhook(pk, {}, body, now=NOW)
    assert not verify_webhook(pk, {"telnyx-timestamp": str(int(NOW))}, body, now=NOW)
    assert not verify_webhook(
        pk, {"telnyx-signature-ed25519": headers["telnyx-signature-ed25519"]}, body, now=NOW
    )
    for ts in ("", "abc", "1e9", "-1", "１７", str(int(NOW)) + ".5"):
        assert not verify_webhook(pk, {**headers, "telnyx-timestamp": ts}, body, now=NOW)
    assert not verify_webhook("", headers, body, now=NOW)
    assert not verify_webhook("not base64!", headers, body, now=NOW)
    assert not verify_webhook(base64.b64encode(b"short").decode(), headers, body, now=NOW)


def test_load_public_key_rejects_non_keys() -> None:
    with pytest.raises(ValueError):
        load_public_key("%%%")
    with pytest.raises(ValueError):
        load_public_key(base64.b64encode(b"\1" * 31).decode())
    assert load_public_key(DOC_KEY) is load_public_key(DOC_KEY)  # cached
