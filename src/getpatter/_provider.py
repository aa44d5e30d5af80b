"""What code written for the Patter SDK reads on every provider and engine object (issue 24).

One mixin instead of twenty copies: the STT, TTS, LLM and engine base classes inherit it, so every
provider answers ``api_key`` and ``api_version`` the same way. Providers keep their key in
``self._api_key``; it is readable by code here but never part of a ``repr`` or a log line.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

_KEY_ATTR = "_api_key"
_VARIANTS_ATTR = "_wire_variants"

P = TypeVar("P")


class ProviderAttributes:
    """``api_key`` (read from ``_api_key``) and ``api_version`` for providers and engines."""

    #: The vendor API version this client pins (e.g. Cartesia's ``Cartesia-Version``, Anthropic's
    #: ``anthropic-version``); ``""`` for vendors that version their API only in the URL path.
    api_version: str = ""

    @property
    def api_key(self) -> str:
        """The key this provider sends to its vendor (``""`` for local providers). Never in ``repr``."""
        key = getattr(self, _KEY_ATTR, None)
        return key if isinstance(key, str) else ""

    @api_key.setter
    def api_key(self, value: str) -> None:
        # For custom providers that assign ``self.api_key = ...`` in their own __init__.
        setattr(self, _KEY_ATTR, value)  # not declared here: each provider types its own ``_api_key``

    def __repr__(self) -> str:
        # A readable default for providers without their own: model and voice, never the key.
        shown = [f"{name}={getattr(self, name)!r}" for name in ("model", "voice") if getattr(self, name, "")]
        return f"{type(self).__name__}({', '.join(shown)})"


def wire_variant(provider: P, wire: Any, build: Callable[[Any], P | None]) -> P:
    """``provider`` as a call on a carrier speaking ``wire`` should use it (carrier-native by default).

    ``build(wire)`` makes the variant (see :func:`with_attributes`) or returns None when the vendor has no
    such format. Variants are made once per wire format and kept on the provider, so every call on the
    same carrier shares one (and its connection pool).
    """
    cache: dict[Any, P] = provider.__dict__.setdefault(_VARIANTS_ATTR, {})
    variant = cache.get(wire)
    if variant is None:
        variant = cache[wire] = build(wire) or provider
    return variant


def wire_variants(provider: P) -> list[P]:
    """The carrier-native copies :func:`wire_variant` made of ``provider`` so far (not ``provider`` itself):
    for a provider holding connections per instance, so its ``close()`` can close theirs too."""
    cache: dict[Any, P] = provider.__dict__.get(_VARIANTS_ATTR, {})
    return [variant for variant in cache.values() if variant is not provider]


def with_attributes(provider: P, **attributes: Any) -> P:
    """A shallow copy of a configuration-only provider with ``attributes`` replaced and its format pinned
    (the copy shares pools and clients with the original)."""
    variant = copy.copy(provider)
    variant.__dict__.pop(_VARIANTS_ATTR, None)
    variant.__dict__.update(attributes, format_pinned=True)
    return variant


__all__ = ["ProviderAttributes", "wire_variant", "wire_variants", "with_attributes"]
