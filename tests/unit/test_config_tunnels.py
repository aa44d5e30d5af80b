"""Tunnel config objects: validation of hostnames, Ngrok without host, exports."""

from __future__ import annotations

import re

import pytest

import getpatter.tunnels as tunnels
from getpatter.errors import PatterConfigError
from getpatter.tunnels.config import CloudflareTunnel, Ngrok, Static, StaticTunnel


def test_exports() -> None:
    assert tunnels.Static is Static
    assert tunnels.StaticTunnel is Static is StaticTunnel
    assert tunnels.CloudflareTunnel is CloudflareTunnel
    assert tunnels.Ngrok is Ngrok


def test_cloudflare_is_config_only() -> None:
    assert CloudflareTunnel() == CloudflareTunnel()
    assert CloudflareTunnel.kind == "cloudflare"


def test_static_keeps_valid_host_and_strips_trailing_slash() -> None:
    assert Static("calls.example.com").hostname == "calls.example.com"
    assert Static(hostname="calls.example.com/").hostname == "calls.example.com"


@pytest.mark.parametrize("value", ["", "   "])
def test_static_empty_hostname(value: str) -> None:
    with pytest.raises(PatterConfigError, match="hostname"):
        Static(value)


def test_static_hostname_with_scheme_shows_fix() -> None:
    with pytest.raises(PatterConfigError, match=re.escape("hostname='calls.example.com'")):
        Static("https://calls.example.com")


def test_ngrok_without_hostname_is_not_implemented() -> None:
    with pytest.raises(NotImplementedError, match="hostname"):
        Ngrok()


def test_ngrok_with_hostname() -> None:
    assert Ngrok(hostname="abc.ngrok-free.app").hostname == "abc.ngrok-free.app"
    with pytest.raises(PatterConfigError, match="path"):
        Ngrok(hostname="abc.ngrok-free.app/webhooks")
