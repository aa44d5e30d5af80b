"""Stream tokens (server/stream_tokens.py); the client address behind trusted proxies (client_address.py)."""

from __future__ import annotations

import pytest

from getpatter.errors import PatterConfigError
from getpatter.server.client_address import TrustedProxies
from getpatter.server.stream_tokens import StreamTokenError, StreamTokens, parse_secrets

KEY = "k" * 32


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _reason(tokens: StreamTokens, token: str | None, call_id: str, direction: str = "inbound") -> str:
    with pytest.raises(StreamTokenError) as info:
        tokens.verify(token, call_id, direction)  # type: ignore[arg-type]
    return info.value.reason


def test_a_token_verifies_for_its_call_and_direction_only() -> None:
    tokens = StreamTokens([KEY])
    token = tokens.mint("CA1", "inbound")
    claim = tokens.verify(token, "CA1", "inbound")
    assert claim.call_id == "CA1" and claim.direction == "inbound" and claim.nonce
    assert _reason(tokens, token, "CA2") == "forged"  # issued for another call
    assert _reason(tokens, token, "CA1", "outbound") == "forged"  # other direction
    assert _reason(StreamTokens(["x" * 32]), token, "CA1") == "forged"  # other server's key
    assert len(token) < 120 and KEY not in token


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("garbage", "malformed"),
        ("v2.1.a.b", "malformed"),
        ("v1.notanumber.a.b", "malformed"),
        ("v1.99999999999." + "a" * 300, "malformed"),
        ("v1.4102444800.nonce.AAAA", "forged"),
        ("v1.4102444800.nonce.é", "malformed"),
    ],
)
def test_missing_malformed_and_forged_tokens_are_refused(token: str | None, reason: str) -> None:
    assert _reason(StreamTokens([KEY]), token, "CA1") == reason


def test_a_tampered_expiry_or_nonce_fails_the_mac() -> None:
    tokens = StreamTokens([KEY])
    version, expires, nonce, mac = tokens.mint("CA1", "inbound").split(".")
    assert _reason(tokens, f"{version}.{int(expires) + 3600}.{nonce}.{mac}", "CA1") == "forged"
    assert _reason(tokens, f"{version}.{expires}.{nonce}x.{mac}", "CA1") == "forged"


def test_tokens_expire_after_their_ttl() -> None:
    clock = Clock()
    tokens = StreamTokens([KEY], ttl_s=300, clock=clock)
    token = tokens.mint("CA1", "inbound")
    clock.now += 299
    tokens.verify(token, "CA1", "inbound")
    clock.now += 1
    assert _reason(tokens, token, "CA1") == "expired"


def test_one_socket_per_token_and_spent_tokens_are_forgotten_once_expired() -> None:
    clock = Clock()
    tokens = StreamTokens([KEY], ttl_s=60, clock=clock)
    token = tokens.mint("CA1", "inbound")
    tokens.spend(tokens.verify(token, "CA1", "inbound"))
    with pytest.raises(StreamTokenError) as info:
        tokens.spend(tokens.verify(token, "CA1", "inbound"))
    assert info.value.reason == "replayed"
    for i in range(50):
        tokens.spend(tokens.verify(tokens.mint(f"CA{i + 2}", "inbound"), f"CA{i + 2}", "inbound"))
    assert tokens.spent_count == 51
    clock.now += 61
    tokens.spend(tokens.verify(tokens.mint("CAnew", "inbound"), "CAnew", "inbound"))
    assert tokens.spent_count == 1  # the ledger stays bounded by calls per TTL


def test_rotated_keys_first_signs_all_verify() -> None:
    old = StreamTokens(["old-key-" + "o" * 24])
    rotated = StreamTokens(parse_secrets("new-key-" + "n" * 24 + " , old-key-" + "o" * 24))
    old_token = old.mint("CA1", "inbound")
    rotated.verify(old_token, "CA1", "inbound")  # in-flight calls keep working
    new_token = rotated.mint("CA1", "inbound")
    assert _reason(old, new_token, "CA1") == "forged"  # the new key signs


def test_secret_source_env_then_carrier_secret_and_keys_never_shown() -> None:
    carrier = "twilio-auth-token-" + "t" * 16
    from_carrier = StreamTokens.from_env(carrier, {})
    from_env = StreamTokens.from_env(carrier, {"PATTER_STREAM_SECRET": "e" * 32})
    token = from_carrier.mint("CA1", "inbound")
    StreamTokens([carrier]).verify(token, "CA1", "inbound")
    assert _reason(from_env, token, "CA1") == "forged"
    assert carrier not in repr(from_carrier) and "e" * 32 not in repr(from_env)
    with pytest.raises(PatterConfigError, match="PATTER_STREAM_SECRET"):
        parse_secrets("short")
    assert parse_secrets("  ") == ()


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    none = TrustedProxies.parse("")
    assert none.client_ip("127.0.0.1", ["203.0.113.9"]) == "127.0.0.1"
    proxies = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")
    assert proxies.client_ip("127.0.0.1", ["203.0.113.9"]) == "203.0.113.9"
    # Right to left, skipping our own proxies; what the client wrote further left is ignored.
    assert proxies.client_ip("10.1.2.3", ["198.51.100.1, 203.0.113.9, 10.0.0.7"]) == "203.0.113.9"
    assert proxies.client_ip("10.1.2.3", ["198.51.100.1", "203.0.113.9:4444"]) == "203.0.113.9"
    # An untrusted peer's header is ignored; garbage falls back to the peer.
    assert proxies.client_ip("192.0.2.50", ["203.0.113.9"]) == "192.0.2.50"
    assert proxies.client_ip("127.0.0.1", ["not-an-ip"]) == "127.0.0.1"
    assert proxies.client_ip("127.0.0.1", []) == "127.0.0.1"
    assert TrustedProxies.parse("::1").client_ip("::1", ["[2001:db8::5]:443"]) == "2001:db8::5"
    with pytest.raises(PatterConfigError, match="PATTER_TRUSTED_PROXIES"):
        TrustedProxies.parse("10.0.0.0/8, nonsense")
