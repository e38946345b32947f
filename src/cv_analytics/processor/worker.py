"""The embedded processor loop: receive, process, acknowledge, sweep orphans."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from .._backoff import backoff_delay
from ..clock import Clock, SystemClock
from ..exceptions import QueueUnavailableError, ReceiptHandleError, StoreError
from ..queues.base import MAX_BATCH_SIZE, Queue
from ..stores.base import Store
from ..stores.models import RecordOutcome
from .batch import BatchProcessor, BatchResult, Status

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    batches: int = 0
    messages: int = 0
    correlated: int = 0
    pending: int = 0
    duplicates: int = 0
    failed: int = 0
    dead_lettered: int = 0
    unanswered: int = 0
    orphan_responses: int = 0
    outages: int = 0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.messages += len(result.items)
        self.correlated += result.count(RecordOutcome.CORRELATED) + result.count(RecordOutcome.COMPLETED_LATE)
        self.pending += result.count(RecordOutcome.PENDING)
        self.duplicates += result.count(RecordOutcome.DUPLICATE)
        self.failed += len(result.with_status(Status.FAILED))
        self.dead_lettered += len(result.with_status(Status.DEAD_LETTERED))


class Worker:
    """Consumes the analytics queue into the store until stopped.

    Poison messages go to the dead-letter queue with their reason after their
    receives; a store outage releases the batch and pauses receiving until the
    store answers again, so an outage costs each message one receive, not three.
    """

    def __init__(
        self,
        queue: Queue,
        store: Store,
        *,
        clock: Clock | None = None,
        wait_seconds: float = 1.0,
        orphan_timeout_seconds: float = 900.0,
        sweep_interval_seconds: float = 60.0,
        max_backoff_seconds: float = 30.0,
        prefetch_batches: int = 20,
        rng: random.Random | None = None,
    ) -> None:
        self.queue = queue
        self.store = store
        self.clock = clock or SystemClock()
        self.wait_seconds = wait_seconds
        self.orphan_timeout_seconds = orphan_timeout_seconds
        self.sweep_interval_seconds = sweep_interval_seconds
        self.max_backoff_seconds = max_backoff_seconds
        if prefetch_batches < 1:
            raise ValueError("prefetch_batches must be at least 1")
        self.prefetch_batches = prefetch_batches
        self.rng = rng or random.Random()
        self.processor = BatchProcessor(queue, store)
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._next_sweep = self.clock.now() + sweep_interval_seconds

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self._stop.set()

    def run(self, *, drain: bool = False, on_batch: Callable[[BatchResult], None] | None = None) -> WorkerStats:
        """Process until :meth:`stop`; with ``drain``, also return once the queue
        has nothing visible, in flight or delayed."""
        failures = 0
        while not self._stop.is_set():
            try:
                result = self.run_once(wait_seconds=0.0 if drain else self.wait_seconds)
                failures = 0
            except (QueueUnavailableError, StoreError) as exc:
                failures += 1
                self.stats.outages += 1
                delay = self._backoff(failures)
                log.warning("worker paused %.1fs: %s", delay, exc)
                self._pause(delay)
                continue
            if on_batch and result.items:
                on_batch(result)
            if drain and not result.items:
                if self._queue_is_empty():
                    break
                self._pause(0.05)  # only in-flight or delayed messages left: wait for them
        return self.stats

    def run_once(self, *, wait_seconds: float | None = None) -> BatchResult:
        """One receive → process → acknowledge cycle (and a sweep when due)."""
        self._sweep_if_due()
        # Under load, take several batches at once and record them in one store
        # transaction: on SQLite, commits rather than events dominate the cost.
        messages = self.queue.receive_many(
            MAX_BATCH_SIZE * self.prefetch_batches,
            wait_seconds=self.wait_seconds if wait_seconds is None else wait_seconds,
        )
        if not messages:
            return BatchResult()
        result = self.processor.process(messages)
        self.stats.add(result)
        if result.to_delete:
            self.queue.delete_batch([m.receipt_handle for m in result.to_delete])
        transient = [i for i in result.to_retry if i.transient]
        for item in result.to_retry:
            if item.status is Status.SKIPPED or item.transient:
                # not the message's fault: make it visible again (after a pause for an outage)
                delay = self._backoff(1) if transient else 0.0
                try:
                    self.queue.change_visibility(item.message.receipt_handle, delay)
                except ReceiptHandleError:
                    pass  # received again elsewhere since: that delivery owns it now
        if transient:
            self._wait_for_store()
        return result

    def sweep(self) -> None:
        """Close out events that waited past the orphan timeout."""
        swept = self.store.sweep_orphans(self.orphan_timeout_seconds)
        self.stats.unanswered += swept.unanswered
        self.stats.orphan_responses += swept.orphan_responses
        if not self.store.expires_by_itself:
            self.store.purge_expired()

    def _sweep_if_due(self) -> None:
        if self.clock.now() >= self._next_sweep:
            self._next_sweep = self.clock.now() + self.sweep_interval_seconds
            self.sweep()

    def _queue_is_empty(self) -> bool:
        attrs = self.queue.attributes()
        return attrs.visible == 0 and attrs.in_flight == 0 and attrs.delayed == 0

    def _wait_for_store(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.store.ping()
                return
            except StoreError as exc:
                failures += 1
                self.stats.outages += 1
                delay = self._backoff(failures)
                log.warning("store still unavailable, next check in %.1fs: %s", delay, exc)
                self._pause(delay)

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, 1.0, self.max_backoff_seconds, self.rng)

    def _pause(self, seconds: float) -> None:
        # real waits wake on stop(); a manual clock just advances
        if isinstance(self.clock, SystemClock):
            self._stop.wait(seconds)
        else:
            self.clock.sleep(seconds)
