"""The in-page caller: the dashboard's "Call this agent" button turns the browser into the caller.

Not a phone carrier (no numbers, no REST, no webhooks): a media protocol (:mod:`.codec`, PCM16 at 16 or
24 kHz) and the routes that hand each page socket to the server's call path (:mod:`.routes`), so the call
runs the served agent with its tools, guardrails, hooks, metrics and call log, as carrier ``"browser"``.
"""

from __future__ import annotations

from getpatter.carriers.browser.codec import KIND, BrowserCodec, is_browser_call_id
from getpatter.carriers.browser.routes import add_browser_routes

__all__ = ["KIND", "BrowserCodec", "add_browser_routes", "is_browser_call_id"]
