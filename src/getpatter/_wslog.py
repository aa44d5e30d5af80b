"""The logger handed to every vendor WebSocket client.

``websockets`` logs handshake requests at DEBUG, headers included (``Authorization``, ``xi-api-key``):
this logger never goes below INFO, so a DEBUG-level application log can never contain a vendor key.
"""

import logging

VENDOR_WS_LOGGER = logging.getLogger("getpatter.vendor_ws")
VENDOR_WS_LOGGER.setLevel(logging.INFO)
