"""Validation of user-supplied values that several config objects share.

Every check raises :class:`~getpatter.errors.PatterConfigError` whose message names the parameter and
shows a corrected value when one can be derived, so a user can fix the call site by copy-paste.
Wrong Python types raise ``TypeError``.
"""

from __future__ import annotations

import ipaddress
import re

from getpatter.errors import PatterConfigError, PatterTypeError

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# host[:port]: DNS name or IPv4 literal, or a bracketed IPv6 literal, then an optional port.
_HOST_PORT = re.compile(
    r"^(?:(?P<name>[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?)"
    r"|\[(?P<v6>[0-9A-Fa-f:.]+)\])(?::(?P<port>\d{1,5}))?$"
)


def _require_str(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise PatterTypeError(f"{param} must be a str, got {type(value).__name__}")
    return value


def validate_e164(value: str, param: str) -> str:
    """Return ``value`` if it is an E.164 number (``+`` then 7-15 digits, no leading 0), else raise.

    When the value only differs by formatting (spaces, dashes, dots, brackets) the message proposes the
    compact form.
    """
    text = _require_str(value, param)
    if _E164.fullmatch(text):
        return text
    hint = "an E.164 number such as '+15551234567' (a '+', the country code, then the number; digits only)"
    compact = re.sub(r"[\s().-]", "", text)
    if compact != text and _E164.fullmatch(compact):
        hint = f"{param}={compact!r}"
    raise PatterConfigError(
        f"{param}={text!r} is not an E.164 phone number (getpatter checks every number where it is "
        f"configured, not when the carrier rejects it). Fix: pass {hint}."
    )


def validate_webhook_host(value: str, param: str = "webhook_url") -> str:
    """Return the bare public ``host[:port]`` the carrier should call back, or ``""`` if not configured.

    The contract (API.md C3) is a bare host: full URLs are built as ``https://{host}/webhooks/...`` and
    ``wss://{host}/ws/...``, so a scheme or a path would end up doubled. Rather than silently rewriting,
    we refuse and show the corrected value. A single trailing ``/`` is harmless and is stripped.
    """
    text = _require_str(value, param).strip()
    if not text:
        return ""
    rest = text
    problem = ""
    if "://" in rest:
        problem = "must not include a scheme"
        rest = rest.split("://", 1)[1]
    host, _sep, tail = rest.partition("/")
    host = host.split("?", 1)[0].split("#", 1)[0]
    if not problem and (tail or "?" in rest or "#" in rest):
        problem = "must not include a path"
    if "@" in host:
        problem = problem or "must not include credentials"
        host = host.rsplit("@", 1)[1]
    if problem:
        fix = f"{param}={host!r}" if _is_host_port(host) else f"{param}='abc.example.com'"
        raise PatterConfigError(
            f"{param}={text!r} {problem}: it must be a bare host name like 'abc.ngrok.io' "
            f"(getpatter adds https://, wss:// and the paths itself. The Patter SDK stripped a scheme "
            f"silently; getpatter refuses, so a wrong URL shows up here, not as failed calls). Fix: {fix}."
        )
    if not _is_host_port(host):
        raise PatterConfigError(
            f"{param}={text!r} is not a valid host name. Fix: pass the public host only, "
            f"e.g. {param}='abc.ngrok.io' or {param}='calls.example.com:8443'."
        )
    return host


def _is_host_port(text: str) -> bool:
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        return False
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return False
    v6 = match.group("v6")
    if v6 is not None:
        try:
            ipaddress.IPv6Address(v6)
        except ValueError:
            return False
    return True


def split_host(host: str) -> str:
    """The host part of ``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (brackets removed)."""
    text = host.strip()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text  # a bare name, IPv4 literal, or unbracketed IPv6 literal


def is_loopback_host(host: str) -> bool:
    """True when ``host`` (optionally with a port) can only be reached from this machine.

    Loopback means ``localhost`` (and ``*.localhost``), any ``127.0.0.0/8`` address and ``::1``
    (also IPv4-mapped). ``0.0.0.0`` / ``::`` mean *every* interface, so they are not loopback. Used by
    the rule that an exposed dashboard needs a token.
    """
    name = split_host(_require_str(host, "host")).rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


__all__ = ["is_loopback_host", "split_host", "validate_e164", "validate_webhook_host"]
