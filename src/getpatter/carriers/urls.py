"""Public URLs, rebuilt from the configured host: the carrier signs what *it* called, not what we see."""

from __future__ import annotations


def public_url(webhook_host: str, path: str, query: str = "") -> str:
    return f"https://{webhook_host}{path}" + (f"?{query}" if query else "")


def public_ws_url(webhook_host: str, path: str) -> str:
    return f"wss://{webhook_host}{path}"
