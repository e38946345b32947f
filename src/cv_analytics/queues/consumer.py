"""One consumer loop for every embedded queue worker: receive, handle, settle, pause, repeat.

The loop knows nothing of what a message means: a
:class:`~cv_analytics.queues.batch.BatchEngine` handles each batch. It

* receives many messages at once (``receive_many``: under load, several
  batches per handler call, so the analytics handler records them in one store
  transaction);
* settles each batch (deletes, dead-letters, releases: see
  :meth:`BatchEngine.settle`);
* backs off when a dependency is down: the queue unreachable pauses receiving
  (exponential backoff with jitter); a batch with an outage is released at
  once and receiving pauses until ``health_check`` passes, so an outage costs
  each message one receive, not its three;
* runs :class:`PeriodicTask` s when due (the analytics orphan sweep), and all
  of them once more before a drain returns, so a drain never leaves due work;
* stops after the batch in hand on :meth:`Consumer.stop` (the CLI calls it on SIGTERM);
* in drain mode, returns once nothing is visible, in flight or delayed.

Time is the injected clock's: pauses are ``Clock.wait(seconds, stop_event)``,
which wake on :meth:`Consumer.stop` on the real clock and just move a manual one.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._backoff import backoff_delay
from ..clock import Clock
from ..exceptions import QueueUnavailableError
from .base import MAX_BATCH_SIZE, Queue
from .batch import BatchEngine, BatchResult

log = logging.getLogger(__name__)

#: How long a drain waits for in-flight or delayed messages before looking again.
DRAIN_POLL_SECONDS = 0.05


@dataclass
class PeriodicTask:
    """Work the loop does every ``interval_seconds`` (first due one interval after start)."""

    name: str
    interval_seconds: float
    run: Callable[[], object]
    #: also run once more before a drain returns (not for housekeeping such as the daily prune)
    run_on_drain: bool = True


class Consumer:
    """Consumes one queue through a batch engine until stopped (or drained)."""

    def __init__(
        self,
        queue: Queue,
        engine: BatchEngine[object],
        *,
        clock: Clock,
        wait_seconds: float = 1.0,
        max_messages: int = MAX_BATCH_SIZE,
        max_backoff_seconds: float = 30.0,
        health_check: Callable[[], object] | None = None,
        transient_errors: tuple[type[BaseException], ...] = (),
        periodic: Sequence[PeriodicTask] = (),
        rng: random.Random | None = None,
        on_batch: Callable[[BatchResult], None] | None = None,
        on_outage: Callable[[BaseException | None], None] | None = None,
        linger_seconds: float = 0.0,
        linger_below: int = 0,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        self.queue = queue
        self.engine = engine
        self.clock = clock
        self.wait_seconds = wait_seconds
        self.max_messages = max_messages
        self.max_backoff_seconds = max_backoff_seconds
        self.health_check = health_check
        #: besides the queue being unreachable, errors that mean "pause and retry" (the handler's dependencies)
        self.transient_errors = (QueueUnavailableError, *transient_errors)
        self.periodic = list(periodic)
        self.rng = rng or random.Random()
        self.on_batch = on_batch
        self.on_outage = on_outage
        #: after a batch of fewer than ``linger_below`` messages, wait this long before the next receive
        #: (not when draining): a trickle is then handled in fewer, larger batches, at the cost of latency
        self.linger_seconds = linger_seconds
        self.linger_below = linger_below
        self._stop = threading.Event()
        self._run_on_batch: Callable[[BatchResult], None] | None = None
        start = clock.monotonic()
        self._due = {task.name: start + task.interval_seconds for task in self.periodic}

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, drain: bool = False, on_batch: Callable[[BatchResult], None] | None = None) -> None:
        """Consume until :meth:`stop`; with ``drain``, also return once the queue has nothing
        visible, in flight or delayed, after running every periodic task once more.
        ``on_batch``: also told of each settled batch of this run (the CLI's metrics)."""
        self._run_on_batch = on_batch
        try:
            self._run(drain)
        finally:
            self._run_on_batch = None

    def _run(self, drain: bool) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                result = self.run_once(wait_seconds=0.0 if drain else self.wait_seconds)
                failures = 0
            except self.transient_errors as exc:
                failures += 1
                self._outage(exc)
                delay = self._backoff(failures)
                log.warning("consumer of %s paused %.1fs: %s", self.queue.name, delay, exc)
                self.clock.wait(delay, self._stop)
                continue
            if not drain and 0 < len(result.items) < self.linger_below and self.linger_seconds > 0:
                self.clock.wait(self.linger_seconds, self._stop)
            if drain and not result.items:
                if self._queue_is_empty():
                    self.run_periodic(force=True)
                    break
                self.clock.wait(DRAIN_POLL_SECONDS, self._stop)  # only in-flight or delayed messages left

    def run_once(self, *, wait_seconds: float | None = None) -> BatchResult:
        """One receive -> handle -> settle cycle (after any periodic task that is due)."""
        self.run_periodic()
        messages = self.queue.receive_many(
            self.max_messages, wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds
        )
        if not messages:
            return BatchResult()
        result = self.engine.process(
            messages, fifo=self.queue.config.fifo, max_receive_count=self.queue.config.max_receive_count
        )
        outage_delay = self._backoff(1) if result.outage else None
        result = self.engine.settle(self.queue, result, delete=True, outage_delay=outage_delay)
        if self.on_batch is not None:
            self.on_batch(result)
        if self._run_on_batch is not None and result.items:
            self._run_on_batch(result)
        if result.outage:
            self._wait_until_healthy()
        return result

    def run_periodic(self, *, force: bool = False) -> None:
        """Run the periodic tasks that are due (every one with ``force``).

        A task's transient error propagates (the loop backs off); any other is
        logged and the task runs again at its next time: one bad task run never
        stops consumption.
        """
        now = self.clock.monotonic()
        for task in self.periodic:
            if (force and not task.run_on_drain) or (not force and now < self._due[task.name]):
                continue
            self._due[task.name] = now + task.interval_seconds
            try:
                task.run()
            except self.transient_errors:
                raise
            except Exception:  # noqa: BLE001 - logged; the next run retries
                log.exception("periodic task %s failed; it runs again in %.0fs", task.name, task.interval_seconds)

    def _wait_until_healthy(self) -> None:
        if self.health_check is None:
            return
        failures = 0
        while not self._stop.is_set():
            try:
                self.health_check()
                return
            except self.transient_errors as exc:
                failures += 1
                self._outage(exc)
                delay = self._backoff(failures)
                log.warning("dependency still unavailable, next check in %.1fs: %s", delay, exc)
                self.clock.wait(delay, self._stop)

    def _queue_is_empty(self) -> bool:
        attrs = self.queue.attributes()
        return attrs.visible == 0 and attrs.in_flight == 0 and attrs.delayed == 0

    def _outage(self, exc: BaseException | None) -> None:
        if self.on_outage is not None:
            self.on_outage(exc)

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, 1.0, self.max_backoff_seconds, self.rng)
