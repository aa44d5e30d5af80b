"""The call layer's task helpers (they live in :mod:`getpatter._tasks`, shared with carriers and server)."""

from getpatter._tasks import BackgroundTasks, cancel_and_wait

__all__ = ["BackgroundTasks", "cancel_and_wait"]
