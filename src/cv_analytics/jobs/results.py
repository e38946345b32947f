"""The result processor: the response queue into the job store, idempotently.

A result moves a queued or running job to its final status; a job already
final keeps its first result, so a duplicate or late message changes nothing
(``succeeded`` stays ``succeeded``, a ``cancelled`` job stays cancelled). A
body that is not a result, or a result for a job the store does not know, goes
to the dead-letter queue with its reason on its first receive.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..clock import Clock, SystemClock
from ..exceptions import StoreError
from ..queues.base import MAX_BATCH_SIZE, Message, Queue
from ..queues.batch import BatchEngine, BatchResult, Outcome, PermanentFailure, Status, Succeeded
from ..queues.consumer import Consumer
from ..stores.jobs import JobStore
from .messages import JobResult

#: What :class:`JobResultHandler` reports per message (the batch's ``details``).
APPLIED = "applied"
IGNORED = "ignored"


class JobResultHandler:
    """The response queue's :class:`~cv_analytics.queues.batch.RecordHandler`."""

    transient_errors: tuple[type[BaseException], ...] = (StoreError,)

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def decode(self, message: Message) -> JobResult:
        return JobResult.from_body(message.body)

    def handle(self, records: Sequence[JobResult]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with self.store.batch():  # one commit for the batch where the store can: a commit per result was most of its time
            for record in records:
                done = self.store.finish(record.job_id, record.status, result=record.result, error=record.error)
                if done.job is None:
                    outcomes.append(PermanentFailure(f"no job {record.job_id} in the job store (never submitted, or expired)"))
                else:
                    outcomes.append(Succeeded(APPLIED if done.applied else IGNORED))
        return outcomes

    def check_health(self) -> None:
        self.store.ping()


@dataclass
class ResultProcessorStats:
    batches: int = 0
    messages: int = 0
    applied: int = 0
    #: duplicates and late results: the job had finished already
    ignored: int = 0
    dead_lettered: int = 0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.messages += len(result.items)
        details = result.details()
        self.applied += details.count(APPLIED)
        self.ignored += details.count(IGNORED)
        self.dead_lettered += len(result.with_status(Status.DEAD_LETTERED))


class ResultProcessor:
    """Consumes the response queue into the job store until stopped (or drained)."""

    def __init__(
        self,
        response_queue: Queue,
        store: JobStore,
        *,
        clock: Clock | None = None,
        wait_seconds: float = 20.0,
        max_backoff_seconds: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.handler = JobResultHandler(store)
        self.stats = ResultProcessorStats()
        self.consumer = Consumer(
            response_queue,
            BatchEngine(self.handler),
            clock=clock or SystemClock(),
            wait_seconds=wait_seconds,
            max_messages=MAX_BATCH_SIZE,
            max_backoff_seconds=max_backoff_seconds,
            health_check=self.handler.check_health,
            transient_errors=self.handler.transient_errors,
            rng=rng,
            on_batch=self.stats.add,
        )

    def stop(self) -> None:
        self.consumer.stop()

    def run(self, *, drain: bool = False, on_batch: Callable[[BatchResult], None] | None = None) -> ResultProcessorStats:
        """Consume until stopped (or, with ``drain``, until the queue is empty); ``on_batch`` also sees each batch."""
        self.consumer.run(drain=drain, on_batch=on_batch)
        return self.stats

    def run_once(self, *, wait_seconds: float | None = None) -> BatchResult:
        return self.consumer.run_once(wait_seconds=wait_seconds)
