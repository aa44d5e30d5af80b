"""TwiML documents the SDK returns to Twilio or sends with a call update (twilio.md §2).

Every value is escaped for XML (``& < > " '``); characters XML 1.0 cannot carry at all (most C0 controls,
lone surrogates, U+FFFE/U+FFFF) are dropped, because an LLM-written ``<Say>`` text must never make the
whole document invalid and end the call. Whitespace controls in attributes become character references so
they survive attribute-value normalisation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["connect_stream", "dial", "hangup", "reject", "say_and_hangup"]

_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTR_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&apos;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


def _text(value: str) -> str:
    return _INVALID_XML.sub("", value).translate(_TEXT_ESCAPES).replace("\r", "&#13;")


def _attr(value: str) -> str:
    return _INVALID_XML.sub("", value).translate(_ATTR_ESCAPES)


def connect_stream(url: str, parameters: Mapping[str, str], status_callback: str | None = None) -> str:
    """``<Connect><Stream>``: a bidirectional media stream to ``url``.

    ``url`` must be ``wss://`` and carry no query string (Twilio drops or rejects it); per-call data goes
    in ``parameters``, which arrive as ``start.customParameters``. Raises ``ValueError`` otherwise.
    """
    if not url.startswith("wss://"):
        raise ValueError(f"Twilio media stream URL must start with wss:// (got {url!r})")
    if "?" in url or "#" in url:
        raise ValueError("Twilio media stream URL must not contain a query string; use parameters instead")
    stream_attrs = f'url="{_attr(url)}"'
    if status_callback is not None:
        stream_attrs += f' statusCallback="{_attr(status_callback)}" statusCallbackMethod="POST"'
    params = "".join(
        f'<Parameter name="{_attr(name)}" value="{_attr(value)}"/>' for name, value in parameters.items()
    )
    return f"{_XML_DECL}<Response><Connect><Stream {stream_attrs}>{params}</Stream></Connect></Response>"


def dial(number: str, caller_id: str | None = None) -> str:
    """``<Dial>number</Dial>``: a cold transfer. Sent as a call update, it ends the media stream."""
    attrs = f' callerId="{_attr(caller_id)}"' if caller_id else ""
    return f"{_XML_DECL}<Response><Dial{attrs}>{_text(number)}</Dial></Response>"


def say_and_hangup(text: str) -> str:
    """Speak ``text`` with Twilio's TTS, then end the call (voicemail drop, apology on failure)."""
    return f"{_XML_DECL}<Response><Say>{_text(text)}</Say><Hangup/></Response>"


def hangup() -> str:
    """End the call."""
    return f"{_XML_DECL}<Response><Hangup/></Response>"


def reject(reason: str = "busy") -> str:
    """Refuse an incoming call without answering it (twilio.md §2.2; not billed): ``busy`` plays a busy
    signal and the call ends ``busy``, ``rejected`` a not-in-service message (``no-answer``)."""
    if reason not in ("busy", "rejected"):
        raise ValueError(f"<Reject reason> must be 'busy' or 'rejected', got {reason!r}")
    return f'{_XML_DECL}<Response><Reject reason="{reason}"/></Response>'
