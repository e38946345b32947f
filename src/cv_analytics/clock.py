"""Time as an injected dependency, so time-based logic is tested without sleeping.

Visibility timeouts, TTLs, the deduplication window, orphan sweeps, ISO week
boundaries, cron schedules, deadlines and pauses all read time through a
:class:`Clock`. Code never asks which clock it has (no ``isinstance`` checks):
a pause is :meth:`Clock.wait`, which wakes early when its event is set on the
real clock and simply moves time on a manual one.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock and monotonic time in seconds, and ways to wait."""

    def now(self) -> float:
        """Seconds since the epoch (timestamps, TTLs, weeks)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines, intervals)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...

    def wait(self, seconds: float, event: threading.Event | None = None) -> bool:
        """Wait ``seconds`` or until ``event`` is set; True when the event is set."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, seconds: float, event: threading.Event | None = None) -> bool:
        if event is None:
            self.sleep(seconds)
            return False
        return event.wait(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to; ``sleep`` and ``wait`` advance it instantly.

    Thread-safe, so a background thread and a test can share one. Its monotonic
    time moves with its wall time (and never back when the wall time is ``set``
    back).
    """

    def __init__(self, start: float = 1_763_164_800.0) -> None:
        self._now = float(start)
        self._monotonic = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._monotonic

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def wait(self, seconds: float, event: threading.Event | None = None) -> bool:
        if event is not None and event.is_set():
            return True
        self.sleep(seconds)
        return event is not None and event.is_set()

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            self._monotonic += max(0.0, seconds)
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            if when > self._now:
                self._monotonic += when - self._now
            self._now = float(when)


def now_ms(clock: Clock) -> int:
    """The clock's time in whole milliseconds since the epoch, as events carry it."""
    return int(clock.now() * 1000)
