"""Stopping tasks for sure.

On Python 3.11 ``asyncio.wait_for`` (used inside some libraries) can swallow a cancellation that races
with its result; a reply that ignores its cancel would keep the call busy forever. So: cancel, wait a
moment, and cancel again until the task is really done.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("getpatter.call")


async def cancel_and_wait(task: asyncio.Task[Any] | None, *, retry_s: float = 1.0) -> None:
    while task is not None and not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_s)
    if task is not None and not task.cancelled() and task.exception() is not None:
        log.debug("cancelled task had failed", exc_info=task.exception())
