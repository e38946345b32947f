"""The job worker: a record handler for the request queue, and the embedded loop around it.

For each request of a batch (up to ten, one after the other):

1. **Claim** the job in the store (queued → running with this worker's lease
   and one more attempt, or running whose holder's lease expired because it
   was killed). A duplicate delivery of a job another worker holds is retried
   once that lease would end; one that finished or was cancelled is deleted.
2. **Run** its handler in a thread, for at most the job type's timeout, while a
   heartbeat extends the visibility of every message of the batch still in
   hand and the running job's lease, and passes on a cancel request.
3. **Report** how it ended on the response queue (the result processor writes
   it to the store): ``succeeded`` with the result, ``cancelled``, ``failed``
   at once for a :class:`~.registry.PermanentJobError`, invalid input or a
   timeout (the message goes to the dead-letter queue with its reason), and for
   any other error a retry after a backoff (the message's visibility) until the
   last receive, where the job becomes ``dead`` and the message is
   dead-lettered with the reason. The worker, which knows the receive count,
   sends that one ``dead`` result: the dead transition reaches the store once.

Should the queue itself dead-letter a request (its worker killed on the last
receive), the embedded worker's periodic :func:`settle_dead_letters` makes
that job ``dead`` with the queue's reason.

The queue rules (partial batch failures, dead-lettering, deletes) are
:class:`~cv_analytics.queues.batch.BatchEngine`'s, for this loop and the
Lambda handler alike.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from .._ids import random_uuid4
from ..clock import Clock, SystemClock
from ..exceptions import MessageTooLargeError, QueueError, QueueUnavailableError, StoreError, StoreUnavailableError
from ..queues.base import FAILURE_REASON_ATTRIBUTE, MAX_BATCH_SIZE, Message, Queue
from ..queues.batch import BatchEngine, BatchResult, Outcome, PermanentFailure, Status, Succeeded, TransientFailure
from ..queues.consumer import Consumer, PeriodicTask
from ..stores.jobs import ClaimOutcome, Job, JobStatus, JobStore
from .messages import JobRequest
from .queue_helpers import send_job_result
from .registry import JobCancelledError, JobInputError, JobRegistry, JobType, PermanentJobError

log = logging.getLogger(__name__)

#: An error kept on a job, or sent as a reason, is cut to this many characters.
MAX_ERROR_CHARS = 2000
MAX_PROGRESS_MESSAGE_CHARS = 200
#: How often a handler's ``context.cancelled`` asks the store again.
CANCEL_POLL_SECONDS = 1.0
#: The lease ends this much before the message can be seen again (a fraction of short test timeouts),
#: so a redelivery after a crash finds the lease expired rather than spending a receive on it.
MAX_LEASE_MARGIN_SECONDS = 2.0
#: How often the worker deletes expired jobs and idempotency keys (reads skip them anyway).
PURGE_INTERVAL_SECONDS = 3600.0
#: How often the embedded worker looks in the request dead-letter queue for jobs the queue gave up on.
DEAD_LETTER_SWEEP_SECONDS = 60.0
#: Dead-lettered requests looked at per sweep (the oldest first; the DLQ keeps them 14 days).
DEAD_LETTER_SWEEP_LIMIT = 1000


def default_owner() -> str:
    """A worker's name in leases: host, process and a random part (two workers in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{random_uuid4()[:8]}"


@dataclass(frozen=True)
class Delivery:
    """A request message and what it asks."""

    message: Message
    request: JobRequest


@dataclass(frozen=True)
class _Ended:
    status: JobStatus | None  # None: the attempt failed and may be retried
    result: dict[str, Any] | None = None
    error: str | None = None


class JobWorkerHandler:
    """The request queue's :class:`~cv_analytics.queues.batch.RecordHandler`. See the module docstring.

    ``request_queue`` is where the messages come from (the heartbeat extends
    their visibility there); ``visibility_timeout`` and ``max_receive_count``
    are that queue's.
    """

    transient_errors: tuple[type[BaseException], ...] = (StoreUnavailableError, QueueUnavailableError)

    def __init__(
        self,
        store: JobStore,
        registry: JobRegistry,
        request_queue: Queue,
        response_queue: Queue,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        retry_base_seconds: float = 5.0,
        retry_max_seconds: float = 300.0,
        heartbeat_interval: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.request_queue = request_queue
        self.response_queue = response_queue
        self.clock = clock or SystemClock()
        self.owner = owner or default_owner()
        self.visibility_timeout = request_queue.config.visibility_timeout
        self.max_receive_count = request_queue.config.max_receive_count
        self.lease_seconds = self.visibility_timeout - min(MAX_LEASE_MARGIN_SECONDS, self.visibility_timeout / 10)
        self.heartbeat_interval = heartbeat_interval or max(0.05, self.visibility_timeout / 3)
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.rng = rng or random.Random()
        self._runner = _HandlerThread()

    def decode(self, message: Message) -> Delivery:
        return Delivery(message, JobRequest.from_body(message.body))

    def handle(self, records: Sequence[Delivery]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        with _Heartbeat(self, [r.message for r in records]) as heartbeat:
            for delivery in records:
                try:
                    outcome = self._handle_one(delivery, heartbeat)
                except self.transient_errors as exc:
                    outcome = TransientFailure(f"job {delivery.request.job_id}: {exc}", outage=True)
                finally:
                    heartbeat.finished(delivery.message)
                outcomes.append(outcome)
        return outcomes

    def check_health(self) -> None:
        self.store.ping()

    # -- one request ----------------------------------------------------------

    def _handle_one(self, delivery: Delivery, heartbeat: _Heartbeat) -> Outcome:
        job_id = delivery.request.job_id
        claim = self.store.claim(job_id, self.owner, self.lease_seconds)
        if claim.outcome is ClaimOutcome.UNKNOWN:
            return PermanentFailure(f"no job {job_id} in the job store (never submitted, or expired)")
        if claim.outcome in (ClaimOutcome.FINISHED, ClaimOutcome.CANCELLED):
            return Succeeded(claim.outcome.value)
        job = claim.job
        assert job is not None
        if claim.outcome is ClaimOutcome.HELD:
            wait = max(1.0, (job.lease_expires_at or 0.0) - self.clock.now())
            return TransientFailure(f"job {job_id} is running on {job.lease_owner}", retry_delay=wait)
        ended = self._run(job, heartbeat)
        return self._report(delivery.message, job, ended)

    def _run(self, job: Job, heartbeat: _Heartbeat) -> _Ended:
        try:
            job_type = self.registry.get(job.type)
            job_input = job_type.parse_input(job.input)
        except JobInputError as exc:
            return _Ended(JobStatus.FAILED, error=str(exc))
        context = RunContext(self, job, heartbeat)
        heartbeat.running(context)
        try:
            ended = self._call(job_type, job_input, context)
        finally:
            heartbeat.running(None)
        if ended.status in (JobStatus.SUCCEEDED, None) and context.cancel_requested_now():
            return _Ended(JobStatus.CANCELLED, error="cancelled while running")
        return ended

    def _call(self, job_type: JobType, job_input: BaseModel, context: RunContext) -> _Ended:
        box, done = self._runner.submit(lambda: job_type.run(job_input, context))
        if not self.clock.wait(job_type.timeout_seconds, done):
            # The thread cannot be stopped: the job fails for good rather than being retried, so
            # that no second run overlaps it; what it does from now on is ignored, and the next
            # job gets a thread of its own.
            context.abandon()
            self._runner.abandon()
            return _Ended(JobStatus.FAILED, error=f"timed out after {job_type.timeout_seconds:g}s")
        if "error" in box:
            return _ended_by(box["error"])
        return _result_of(box.get("value"))

    def _report(self, message: Message, job: Job, ended: _Ended) -> Outcome:
        status, error = ended.status, _clip(ended.error)
        last = message.receive_count >= self.max_receive_count
        if status is None and last:
            status = JobStatus.DEAD
            error = _clip(f"failed on receive {message.receive_count} of {self.max_receive_count}: {ended.error}")
        if status is None:
            self.store.release(job.job_id, self.owner, _clip(f"attempt {job.attempts} failed, retrying: {ended.error}"))
            return TransientFailure(error or "failed", retry_delay=self._retry_delay(message.receive_count))
        try:
            send_job_result(
                self.response_queue, job.job_id, status, result=ended.result, error=error, attempt=job.attempts
            )
        except MessageTooLargeError as exc:
            status, error = JobStatus.FAILED, _clip(f"its result does not fit a message: {exc}")
            send_job_result(self.response_queue, job.job_id, status, error=error, attempt=job.attempts)
        except QueueError as exc:
            # the result is lost with the send: give the job back, so that its redelivery runs it again
            self.store.release(job.job_id, self.owner, _clip(f"its result could not be sent: {exc}"))
            raise QueueUnavailableError(f"response queue: {exc}") from exc
        self.store.mark_reported(job.job_id, self.owner, status)
        if status in (JobStatus.FAILED, JobStatus.DEAD):
            return PermanentFailure(f"job {job.job_id} {status.value}: {error}")
        return Succeeded(status.value)

    def _retry_delay(self, receive_count: int) -> float:
        """Exponential in the receive count, jittered in its upper half (never zero: it is a backoff)."""
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** (receive_count - 1))
        return self.rng.uniform(ceiling / 2, ceiling)


def _ended_by(exc: BaseException) -> _Ended:
    if isinstance(exc, JobCancelledError):
        return _Ended(JobStatus.CANCELLED, error=str(exc) or "cancelled while running")
    if isinstance(exc, PermanentJobError | ValidationError | JobInputError):
        return _Ended(JobStatus.FAILED, error=str(exc) or type(exc).__name__)
    if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt in a handler thread: not its job's outcome
        return _Ended(None, error=f"handler raised {type(exc).__name__}")
    return _Ended(None, error=f"{type(exc).__name__}: {exc}")


def _result_of(value: Any) -> _Ended:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if not isinstance(value, Mapping):
        return _Ended(JobStatus.FAILED, error=f"the handler returned {type(value).__name__}, not a JSON object")
    return _Ended(JobStatus.SUCCEEDED, result=dict(value))


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:MAX_ERROR_CHARS]


class RunContext:
    """The :class:`~.registry.JobContext` of one run."""

    def __init__(self, worker: JobWorkerHandler, job: Job, heartbeat: _Heartbeat) -> None:
        self._worker = worker
        self._job = job
        self._heartbeat = heartbeat
        self._cancel_seen = job.cancel_requested
        self._abandoned = False
        self._checked_at = worker.clock.monotonic()

    @property
    def job_id(self) -> str:
        return self._job.job_id

    @property
    def attempt(self) -> int:
        return self._job.attempts

    def report_progress(self, percent: int, message: str | None = None) -> None:
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"progress is a whole number 0–100, got {percent!r}")
        if self._abandoned:
            return
        message = None if message is None else message[:MAX_PROGRESS_MESSAGE_CHARS]
        try:
            job = self._worker.store.report_progress(self.job_id, self._worker.owner, percent, message)
        except StoreError as exc:  # progress is advice: a store hiccup must not fail the job
            log.warning("progress of job %s not recorded: %s", self.job_id, exc, extra={"fields": {"jobId": self.job_id}})
            return
        self.seen(job)

    @property
    def cancelled(self) -> bool:
        if self._abandoned or self._cancel_seen:
            return True
        if self._worker.clock.monotonic() - self._checked_at >= CANCEL_POLL_SECONDS:
            self.cancel_requested_now()
        return self._cancel_seen

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelledError("cancelled while running")

    def heartbeat(self) -> None:
        self._heartbeat.beat()

    # -- the worker's side --------------------------------------------------

    def seen(self, job: Job | None) -> None:
        """A fresh copy of the job from the store: note a cancel request (or the job gone)."""
        self._checked_at = self._worker.clock.monotonic()
        if job is None or job.cancel_requested or job.status is JobStatus.CANCELLED:
            self._cancel_seen = True

    def cancel_requested_now(self) -> bool:
        try:
            self.seen(self._worker.store.get(self.job_id))
        except StoreError as exc:
            log.warning(
                "could not check whether job %s was cancelled: %s", self.job_id, exc, extra={"fields": {"jobId": self.job_id}}
            )
        return self._cancel_seen

    def abandon(self) -> None:
        self._abandoned = True


class _HandlerThread:
    """Runs handlers one at a time on one long-lived thread (a thread per job cost a sixth of the
    worker's CPU); a handler that overran its timeout keeps its thread, and a new one takes over."""

    def __init__(self) -> None:
        self._tasks: queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event] | None] | None = None

    def submit(self, call: Callable[[], Any]) -> tuple[dict[str, Any], threading.Event]:
        if self._tasks is None:
            self._tasks = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(self._tasks,), name="job-handler", daemon=True).start()
        box: dict[str, Any] = {}
        done = threading.Event()
        self._tasks.put((call, box, done))
        return box, done

    def abandon(self) -> None:
        """Leave the current thread to its overrunning handler: it ends after it."""
        if self._tasks is not None:
            self._tasks.put(None)
        self._tasks = None

    @staticmethod
    def _serve(tasks: queue.SimpleQueue[tuple[Callable[[], Any], dict[str, Any], threading.Event] | None]) -> None:
        while (task := tasks.get()) is not None:
            call, box, done = task
            try:
                box["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - reported as the job's outcome
                box["error"] = exc
            finally:
                done.set()


class _Heartbeat:
    """While a batch is in hand: every ``heartbeat_interval``, extend the visibility of its messages
    not yet finished and the running job's lease (and note a cancel request)."""

    def __init__(self, worker: JobWorkerHandler, messages: Sequence[Message]) -> None:
        self._worker = worker
        self._pending = {m.receipt_handle: m for m in messages}
        self._context: RunContext | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def running(self, context: RunContext | None) -> None:
        with self._lock:
            self._context = context

    def finished(self, message: Message) -> None:
        with self._lock:
            self._pending.pop(message.receipt_handle, None)

    def _run(self) -> None:
        while not self._worker.clock.wait(self._worker.heartbeat_interval, self._stop):
            self.beat()

    def beat(self) -> None:
        worker = self._worker
        with self._lock:
            handles = list(self._pending)
            context = self._context
        for handle in handles:
            try:
                worker.request_queue.change_visibility(handle, worker.visibility_timeout)
            except QueueError as exc:  # best effort: the next beat tries again
                log.warning("heartbeat could not extend a message's visibility: %s", exc)
        if context is not None:
            try:
                context.seen(worker.store.heartbeat(context.job_id, worker.owner, worker.lease_seconds))
            except StoreError as exc:
                log.warning(
                    "heartbeat could not extend the lease of job %s: %s", context.job_id, exc,
                    extra={"fields": {"jobId": context.job_id}},
                )  # fmt: skip


def settle_dead_letters(store: JobStore, request_queue: Queue, *, limit: int = DEAD_LETTER_SWEEP_LIMIT) -> int:
    """Jobs whose request the queue dead-lettered by itself (the worker was killed on the last receive,
    so it never sent the ``dead`` result) become ``dead`` with the queue's reason; how many.

    A job some worker still holds (a live lease) or whose result is on its way is left to it, and a
    finished one keeps its state. On SQS a peek briefly receives the dead letters (see ``Queue.peek``).
    """
    dlq = request_queue.dead_letter_queue
    if dlq is None:
        return 0
    settled = 0
    now = store.clock.now()
    for message in dlq.peek(limit):
        try:
            job_id = JobRequest.from_body(message.body).job_id
        except ValidationError:
            continue  # not a request: it was never a job
        job = store.get(job_id)
        if job is None or job.finished or job.reported_status is not None or job.lease_live(now):
            continue
        reason = message.attributes.get(FAILURE_REASON_ATTRIBUTE, "its request was dead-lettered")
        settled += store.finish(job_id, JobStatus.DEAD, error=_clip(f"dead-lettered by the queue: {reason}")).applied
    return settled


@dataclass
class JobWorkerStats:
    batches: int = 0
    messages: int = 0
    succeeded: int = 0
    cancelled: int = 0
    #: jobs failed or dead, and requests that could never run (their messages dead-lettered)
    failed: int = 0
    retried: int = 0
    duplicates: int = 0
    outages: int = 0

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.messages += len(result.items)
        details = result.details()
        self.succeeded += details.count(JobStatus.SUCCEEDED.value)
        self.cancelled += details.count(JobStatus.CANCELLED.value)  # ended so, or found so when claimed
        self.duplicates += details.count(ClaimOutcome.FINISHED.value)
        self.failed += len(result.with_status(Status.DEAD_LETTERED, Status.PERMANENT))
        self.retried += len(result.with_status(Status.TRANSIENT, Status.SKIPPED))


class JobWorker:
    """Consumes the request queue until stopped (or drained): batches of what is visible, up to ten."""

    def __init__(
        self,
        request_queue: Queue,
        response_queue: Queue,
        store: JobStore,
        registry: JobRegistry,
        *,
        clock: Clock | None = None,
        wait_seconds: float = 20.0,
        owner: str | None = None,
        retry_base_seconds: float = 5.0,
        retry_max_seconds: float = 300.0,
        heartbeat_interval: float | None = None,
        max_backoff_seconds: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.store = store
        self.handler = JobWorkerHandler(
            store,
            registry,
            request_queue,
            response_queue,
            clock=self.clock,
            owner=owner,
            retry_base_seconds=retry_base_seconds,
            retry_max_seconds=retry_max_seconds,
            heartbeat_interval=heartbeat_interval,
            rng=rng,
        )
        self.stats = JobWorkerStats()
        self.consumer = Consumer(
            request_queue,
            BatchEngine(self.handler),
            clock=self.clock,
            wait_seconds=wait_seconds,
            max_messages=MAX_BATCH_SIZE,
            max_backoff_seconds=max_backoff_seconds,
            health_check=self.handler.check_health,
            transient_errors=self.handler.transient_errors,
            periodic=[
                PeriodicTask("purge-expired-jobs", PURGE_INTERVAL_SECONDS, self._purge),
                PeriodicTask(
                    "settle-dead-letters", DEAD_LETTER_SWEEP_SECONDS, lambda: settle_dead_letters(store, request_queue)
                ),
            ],
            rng=rng,
            on_batch=self.stats.add,
            on_outage=self._count_outage,
        )

    @property
    def owner(self) -> str:
        return self.handler.owner

    def stop(self) -> None:
        """Finish the job in hand (and its batch), then return from :meth:`run`."""
        self.consumer.stop()

    def run(self, *, drain: bool = False, on_batch: Callable[[BatchResult], None] | None = None) -> JobWorkerStats:
        """Consume until stopped (or, with ``drain``, until the queue is empty); ``on_batch`` also sees each batch."""
        self.consumer.run(drain=drain, on_batch=on_batch)
        return self.stats

    def run_once(self, *, wait_seconds: float | None = None) -> BatchResult:
        return self.consumer.run_once(wait_seconds=wait_seconds)

    def _purge(self) -> None:
        if not self.store.expires_by_itself:
            self.store.purge_expired()

    def _count_outage(self, _exc: BaseException | None) -> None:
        self.stats.outages += 1
