"""getpatter: give an AI agent a phone number."""

from getpatter._version import __version__
from getpatter.errors import (
    AuthenticationError,
    ErrorCode,
    PatterConfigError,
    PatterConnectionError,
    PatterError,
    ProvisionError,
    RateLimitError,
)

__all__ = [
    "AuthenticationError",
    "ErrorCode",
    "PatterConfigError",
    "PatterConnectionError",
    "PatterError",
    "ProvisionError",
    "RateLimitError",
    "__version__",
]
