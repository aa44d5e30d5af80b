"""How long a test waits before it calls a wait a hang: a guard, never a performance assertion.

Whole-call tests wait on events ("agent audio arrived", "call ended"); their timeouts only turn a hang
into a failure. On a busy 2-core machine (CI running beside another job, ``-n 4`` workers) the same
wait can take several times longer than on an idle one, so every wait of the fakes and harnesses is
multiplied by ``PATTER_TEST_PATIENCE`` (default 4). A passing test never waits longer for it.
"""

from __future__ import annotations

import os

PATIENCE = max(1.0, float(os.environ.get("PATTER_TEST_PATIENCE", "4")))


def patient(timeout: float) -> float:
    """``timeout`` stretched for a loaded machine."""
    return timeout * PATIENCE
