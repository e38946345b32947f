"""In-process news that a job changed, for waiters (``GET /jobs/{id}?wait=``) to wake at once.

The job store calls :meth:`JobWatch.notify` after each change it writes in
this process. Changes written by other processes (workers, the result
processor under ``serve``) are not seen here: a waiter also looks at the store
every poll interval, so it wakes within that without a polling storm. Async
waiters cost an ``asyncio.Event`` each, no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict

from ..stores.jobs import Job


class JobWatch:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._async: defaultdict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)

    def notify(self, job: Job) -> None:
        with self._lock:
            self._changed.notify_all()
            waiters = list(self._async.get(job.job_id, ()))
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits any more
                loop.call_soon_threadsafe(event.set)

    def wait(self, seconds: float) -> None:
        """Block until any job changes in this process, or ``seconds`` pass."""
        with self._changed:
            self._changed.wait(max(0.0, seconds))

    async def wait_async(self, job_id: str, seconds: float) -> None:
        """Until job ``job_id`` changes in this process, or ``seconds`` pass."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._async[job_id].add(entry)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry[1].wait(), max(0.0, seconds))
        finally:
            with self._lock:
                waiters = self._async.get(job_id)
                if waiters is not None:
                    waiters.discard(entry)
                    if not waiters:
                        del self._async[job_id]
