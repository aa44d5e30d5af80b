"""Telnyx carrier. ``Carrier`` is the namespaced name (``getpatter.carriers.telnyx.Carrier``)."""

from getpatter.carriers.telnyx.config import Telnyx

Carrier = Telnyx

__all__ = ["Carrier", "Telnyx"]
