"""The embedded analytics worker: the consumer loop, the analytics handler and the orphan sweep, assembled."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..clock import Clock, SystemClock
from ..queues.base import MAX_BATCH_SIZE, Queue
from ..queues.batch import BatchEngine, BatchResult, Status
from ..queues.consumer import Consumer, PeriodicTask
from ..stores.base import Store
from ..stores.models import RecordOutcome
from .handler import AnalyticsHandler

#: Name of the orphan sweep among the consumer's periodic tasks.
ORPHAN_SWEEP = "orphan-sweep"


@dataclass
class WorkerStats:
    batches: int = 0
    messages: int = 0
    correlated: int = 0
    pending: int = 0
    duplicates: int = 0
    #: receives that end in a retry (transient failures, and permanent ones the DLQ could not take)
    failed: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    unanswered: int = 0
    orphan_responses: int = 0
    outages: int = 0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.messages += len(result.items)
        outcomes = result.details()
        self.correlated += sum(o in (RecordOutcome.CORRELATED, RecordOutcome.COMPLETED_LATE) for o in outcomes)
        self.pending += sum(o is RecordOutcome.PENDING for o in outcomes)
        self.duplicates += sum(o is RecordOutcome.DUPLICATE for o in outcomes)
        self.failed += len(result.with_status(Status.TRANSIENT, Status.PERMANENT))
        self.skipped += len(result.with_status(Status.SKIPPED))
        self.dead_lettered += len(result.with_status(Status.DEAD_LETTERED))


class Worker:
    """Consumes the analytics queue into the store until stopped.

    A message that can never be recorded goes to the dead-letter queue with its
    reason on its first receive; a store outage releases the batch and pauses
    receiving until the store answers again, so an outage costs each message one
    receive. The orphan sweep runs every ``sweep_interval_seconds`` and before a
    drain returns; ``tasks`` are more periodic work the wiring adds (resolving the
    report's skills off the write path).
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
        prefetch_batches: int = 50,
        tasks: Sequence[PeriodicTask] = (),
        rng: random.Random | None = None,
        redact_pii: bool = False,
        linger_seconds: float = 0.1,
    ) -> None:
        if prefetch_batches < 1:
            raise ValueError("prefetch_batches must be at least 1")
        self.queue = queue
        self.store = store
        self.clock = clock or SystemClock()
        self.orphan_timeout_seconds = orphan_timeout_seconds
        self.handler = AnalyticsHandler(store, redact=redact_pii)
        self.stats = WorkerStats()
        self.consumer = Consumer(
            queue,
            BatchEngine(self.handler),
            clock=self.clock,
            wait_seconds=wait_seconds,
            # Under load, take several batches at once and record them in one store
            # transaction: on SQLite, commits rather than events dominate the cost.
            max_messages=MAX_BATCH_SIZE * prefetch_batches,
            max_backoff_seconds=max_backoff_seconds,
            health_check=self.handler.check_health,
            transient_errors=self.handler.transient_errors,
            periodic=[PeriodicTask(ORPHAN_SWEEP, sweep_interval_seconds, self.sweep), *tasks],
            rng=rng,
            on_batch=self.stats.add,
            on_outage=self._count_outage,
            # Analytics is not urgent (the report is weekly): a trickle of events waits a little to be
            # correlated in larger store transactions, which cost the worker less CPU per event.
            linger_seconds=linger_seconds,
            linger_below=MAX_BATCH_SIZE * 10,
        )

    def stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run`."""
        self.consumer.stop()

    def run(self, *, drain: bool = False, on_batch: Callable[[BatchResult], None] | None = None) -> WorkerStats:
        """Process until :meth:`stop`; with ``drain``, also return once the queue has nothing
        visible, in flight or delayed (after a last orphan sweep)."""
        self.consumer.run(drain=drain, on_batch=on_batch)
        return self.stats

    def run_once(self, *, wait_seconds: float | None = None) -> BatchResult:
        """One receive -> process -> acknowledge cycle (and a sweep when due)."""
        return self.consumer.run_once(wait_seconds=wait_seconds)

    def sweep(self) -> None:
        """Close out events that waited past the orphan timeout."""
        swept = self.store.sweep_orphans(self.orphan_timeout_seconds)
        self.stats.unanswered += swept.unanswered
        self.stats.orphan_responses += swept.orphan_responses
        if not self.store.expires_by_itself:
            self.store.purge_expired()

    def _count_outage(self, _exc: BaseException | None) -> None:
        self.stats.outages += 1
