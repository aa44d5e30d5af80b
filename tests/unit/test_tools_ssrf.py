"""The webhook SSRF guard: only public http(s) destinations, checked after DNS resolution."""

from __future__ import annotations

import ipaddress

import pytest

from getpatter.tools.ssrf import (
    WebhookBlockedError,
    WebhookResolveError,
    check_webhook_url,
    is_forbidden_address,
)


def resolver(mapping: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    seen: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        seen.append((host, port))
        if host not in mapping:
            raise OSError("name not known")
        return mapping[host]

    resolve.seen = seen  # type: ignore[attr-defined]
    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    ],
)
def test_forbidden_addresses(address: str) -> None:
    assert is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_allowed(address: str) -> None:
    assert not is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/hook",
        "https://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
    ],
)
async def test_literal_and_local_urls_refused(url: str) -> None:
    resolve = resolver({})
    with pytest.raises(WebhookBlockedError):
        await check_webhook_url(url, resolve=resolve)
    assert resolve.seen == []  # refused without asking DNS


async def test_name_resolving_to_private_address_refused() -> None:
    resolve = resolver({"internal.example.com": ["10.1.2.3"]})
    with pytest.raises(WebhookBlockedError, match=r"10\.1\.2\.3"):
        await check_webhook_url("https://internal.example.com/hook", resolve=resolve)
    assert resolve.seen == [("internal.example.com", 443)]


async def test_every_resolved_address_must_be_public() -> None:
    resolve = resolver({"mixed.example.com": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(WebhookBlockedError):
        await check_webhook_url("http://mixed.example.com:8080/x", resolve=resolve)
    assert resolve.seen == [("mixed.example.com", 8080)]


async def test_public_name_allowed() -> None:
    resolve = resolver({"api.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    await check_webhook_url("https://api.example.com/hook", resolve=resolve)


async def test_unresolvable_name_is_resolve_error() -> None:
    with pytest.raises(WebhookResolveError):
        await check_webhook_url("https://nowhere.example.com/", resolve=resolver({}))


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x/", "//example.com/x"]
)
async def test_non_http_schemes_refused_even_when_private_allowed(url: str) -> None:
    with pytest.raises(WebhookBlockedError, match="scheme"):
        await check_webhook_url(url, allow_private=True)


async def test_allow_private_lifts_address_rule() -> None:
    await check_webhook_url("http://127.0.0.1:9/hook", allow_private=True)
    await check_webhook_url("http://localhost/hook", allow_private=True)


@pytest.mark.parametrize("url", ["http://127.1/hook", "http://2130706433/hook", "http://0x7f000001/hook"])
async def test_odd_ipv4_spellings_go_through_the_real_resolver_and_are_refused(url: str) -> None:
    # ipaddress does not parse these shorthand forms, but the system resolver (loop.getaddrinfo) maps
    # them to 127.0.0.1, and the guard checks what the name resolves to.
    with pytest.raises(WebhookBlockedError, match=r"127\.0\.0\.1"):
        await check_webhook_url(url)
