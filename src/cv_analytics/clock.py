"""Time as an injected dependency, so time-based logic is tested without sleeping.

Visibility timeouts, TTLs, the deduplication window, orphan sweeps, ISO week
boundaries and cron schedules all read time through a :class:`Clock`.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch, and a way to wait."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instantly.

    Thread-safe, so a background thread and a test can share one.
    """

    def __init__(self, start: float = 1_763_164_800.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            self._now = float(when)


def now_ms(clock: Clock) -> int:
    """The clock's time in whole milliseconds since the epoch, as events carry it."""
    return int(clock.now() * 1000)
