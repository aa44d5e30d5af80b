"""``X-Twilio-Signature``: HMAC-SHA1 over the requested URL plus the sorted form parameters.

Contract (twilio.md §5):

* The signed string is the full URL Twilio requested (scheme, host, optional port, path, query exactly as
  configured), followed, for each distinct parameter name in byte-wise sorted order, by the name and then
  each of its **distinct** values in sorted order, with no separators. Values are the decoded form values.
* The key is the auth token (UTF-8); the result is standard base64 of the 20-byte digest.
* Verification accepts the URL without an explicit port **or** with the scheme's default port added,
  because Twilio's own validator does and proxies disagree on whether the port appears.
* A JSON-body request carries ``bodySHA256`` in the query string: the body's hash is checked, and the URL
  alone (no parameters) is signed.
* Comparison is constant-time. Callers must pass *every* form parameter, empty ones included, and the
  public URL (``https://{public_host}{path}[?query]``, or ``wss://`` for a WebSocket upgrade), never the
  URL the local server saw behind a tunnel.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["SignatureParams", "compute_signature", "verify_signature"]

_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


class _MultiItems(Protocol):
    """Starlette's ``FormData``/``QueryParams`` and similar multi-dicts: ``multi_items()`` keeps repeats."""

    def multi_items(self) -> list[tuple[str, Any]]: ...


#: Accepted parameter shapes: a plain mapping (a value may be a list for a repeated key), a multi-dict
#: with ``multi_items()`` (e.g. Starlette form data), or an iterable of ``(name, value)`` pairs.
SignatureParams: TypeAlias = (
    Mapping[str, str | Sequence[str]] | _MultiItems | Iterable[tuple[str, str]] | None
)


def _grouped(params: SignatureParams) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    if params is None:
        return groups
    pairs: Iterable[tuple[str, str | Sequence[str]]]
    if hasattr(params, "multi_items"):
        pairs = params.multi_items()
    elif isinstance(params, Mapping):
        pairs = params.items()
    else:
        pairs = params
    for name, value in pairs:
        bucket = groups.setdefault(name, set())
        if isinstance(value, str):
            bucket.add(value)
        elif isinstance(value, Sequence):
            bucket.update(v for v in value if isinstance(v, str))
        # Anything else (an uploaded file) is not something Twilio signs.
    return groups


def _signed_string(url: str, params: SignatureParams) -> str:
    parts = [url]
    groups = _grouped(params)
    for name in sorted(groups):
        for value in sorted(groups[name]):
            parts.append(name)
            parts.append(value)
    return "".join(parts)


def compute_signature(auth_token: str, url: str, params: SignatureParams = None) -> str:
    """The ``X-Twilio-Signature`` value Twilio sends for a request to ``url`` with form ``params``.

    ``url`` is signed exactly as given (no port normalisation): pass what Twilio was configured with.
    """
    message = _signed_string(url, params).encode("utf-8")
    digest = hmac.new(auth_token.encode("utf-8"), message, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """The URL without any explicit port, and with the scheme's default port added (if it had none)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return [url]
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    without = urlunsplit(parts._replace(netloc=prefix + host))
    if port is not None:
        return [url, without]
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None:
        return [url]
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}"))
    return [url, with_port]


def _body_hash_ok(url: str, body: bytes | None) -> bool | None:
    """``None`` when the URL carries no ``bodySHA256``; else whether ``body`` matches it."""
    query = urlsplit(url).query
    if "bodySHA256" not in query:
        return None
    expected = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "bodySHA256"]
    if len(expected) != 1 or body is None:
        return False
    actual = hashlib.sha256(body).hexdigest().encode()
    # bytes on both sides: compare_digest refuses non-ASCII str, and the header is attacker-controlled
    return hmac.compare_digest(actual, expected[0].lower().encode("utf-8", "surrogateescape"))


def verify_signature(
    auth_token: str,
    url: str,
    params: SignatureParams,
    signature: str | None,
    *,
    body: bytes | None = None,
) -> bool:
    """Whether ``signature`` (the ``X-Twilio-Signature`` header) is valid for ``url`` and ``params``.

    ``False`` for a missing or empty header. When ``url`` carries ``bodySHA256`` (JSON webhooks), pass the
    raw ``body``: its SHA-256 must match and the URL is then signed without parameters.
    """
    if not signature or not auth_token:
        return False
    body_ok = _body_hash_ok(url, body)
    if body_ok is False:
        return False
    signed_params: SignatureParams = None if body_ok else params
    given = signature.encode("utf-8", "surrogateescape")
    valid = False
    for candidate in _port_variants(url):
        expected = compute_signature(auth_token, candidate, signed_params).encode("ascii")
        # No short-circuit: both variants are always computed and compared.
        valid = hmac.compare_digest(expected, given) or valid
    return valid
