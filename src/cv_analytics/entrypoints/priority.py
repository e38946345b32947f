"""Background processes yield the CPU to the chatbot's requests (``CV_ANALYTICS_WORKER_NICE``)."""

from __future__ import annotations

import os


def lower_priority(nice: int) -> None:
    """At least ``nice`` (never back up: an unprivileged process cannot, and a second call is a no-op)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) < nice:
            os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError:  # not allowed here: run at the normal priority
        pass
