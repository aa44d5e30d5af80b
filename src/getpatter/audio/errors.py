"""Audio's own error: ``audio/`` depends on nothing else of ours (ARCHITECTURE.md layering)."""


class AudioConfigError(ValueError):
    """A bad audio parameter (format, rate, frame size, threshold). The message names it and the fix."""
