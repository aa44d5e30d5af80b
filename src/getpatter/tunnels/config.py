"""Tunnel choices for ``Patter(tunnel=...)``: configuration only, no processes.

A tunnel answers one question: which public host do carriers call back? ``Static``/``Ngrok`` know it
up front; ``CloudflareTunnel`` learns it only once ``cloudflared`` runs (see the tunnel runner).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from getpatter.errors import PatterConfigError
from getpatter.validation import validate_webhook_host


@dataclass(frozen=True)
class CloudflareTunnel:
    """A throw-away ``https://<random>.trycloudflare.com`` quick tunnel (needs ``cloudflared`` on PATH).

    The host is unknown until the process prints it, so it cannot be combined with ``webhook_url``.
    """

    kind: ClassVar[Literal["cloudflare"]] = "cloudflare"


@dataclass(frozen=True)
class Static:
    """A host you already route to this server (reverse proxy, named tunnel, ...). No process is started."""

    hostname: str

    kind: ClassVar[Literal["static"]] = "static"

    def __post_init__(self) -> None:
        host = validate_webhook_host(self.hostname, param="hostname")
        if not host:
            raise PatterConfigError(
                "Static tunnel needs a hostname. Fix: pass Static(hostname='calls.example.com'), "
                "or use CloudflareTunnel() / tunnel=True for a temporary public host."
            )
        object.__setattr__(self, "hostname", host)


StaticTunnel = Static


@dataclass(frozen=True)
class Ngrok:
    """An ngrok endpoint you run yourself (``ngrok http 8000``); getpatter does not launch ngrok."""

    hostname: str = ""

    kind: ClassVar[Literal["ngrok"]] = "ngrok"

    def __post_init__(self) -> None:
        host = validate_webhook_host(self.hostname, param="hostname")
        if not host:
            raise NotImplementedError(
                "getpatter does not start ngrok for you. Run `ngrok http <port>` yourself and pass its host: "
                "Ngrok(hostname='abc123.ngrok-free.app'), or use CloudflareTunnel() / tunnel=True instead."
            )
        object.__setattr__(self, "hostname", host)


TunnelConfig = CloudflareTunnel | Static | Ngrok

__all__ = ["CloudflareTunnel", "Ngrok", "Static", "StaticTunnel", "TunnelConfig"]
