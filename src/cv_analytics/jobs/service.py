"""The jobs service: submit, read, list, cancel and wait, over a job store and the request queue.

What the HTTP API and the command line call. Submission validates the input
against the job type's own model (a :class:`~.registry.JobInputError` naming
the field, never a job that fails later), writes the job, then sends its
request; a request that cannot be sent fails its job at once and frees its
idempotency key, so that the caller's retry makes a new one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ..clock import Clock, SystemClock
from ..exceptions import JobNotFoundError, QueueError
from ..queues.base import Queue
from ..stores.jobs import Job, JobPage, JobStatus, JobStore, request_hash
from .queue_helpers import send_job_request
from .registry import JobRegistry
from .watch import JobWatch

#: ``wait`` holds at most this long (the HTTP API's ``?wait=`` ceiling).
MAX_WAIT_SECONDS = 20.0
#: A waiter looks at the store this often for changes made by other processes.
WAIT_POLL_SECONDS = 0.1
MAX_IDEMPOTENCY_KEY_CHARS = 255


class JobService:
    """Job ids are ``uuid4`` from the OS's randomness, not the ``random`` module's: a program (or a test
    framework) that seeds ``random`` must not make two processes hand out the same id."""

    def __init__(
        self,
        store: JobStore,
        request_queue: Queue,
        registry: JobRegistry,
        *,
        clock: Clock | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        poll_seconds: float = WAIT_POLL_SECONDS,
    ) -> None:
        self.store = store
        self.request_queue = request_queue
        self.registry = registry
        self.clock = clock or SystemClock()
        self.new_id = new_id
        self.poll_seconds = poll_seconds
        self.watch = JobWatch()
        store.subscribe(self.watch.notify)

    def submit(
        self, job_type: str, job_input: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """``(job, created)``: a new queued job, or the one ``idempotency_key`` made from the same
        request in the last 24 hours (``created`` False). Raises :class:`~.registry.JobInputError`,
        :class:`~cv_analytics.exceptions.IdempotencyConflictError`, and a
        :class:`~cv_analytics.exceptions.QueueError` when the request could not be sent."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS:
            raise ValueError(f"an Idempotency-Key is 1–{MAX_IDEMPOTENCY_KEY_CHARS} characters")
        normalised = self.registry.get(job_type).normalised_input(job_input)
        job, created = self.store.create(
            self.new_id(),
            job_type,
            normalised,
            idempotency_key=idempotency_key,
            fingerprint=request_hash(job_type, job_input),
        )
        if created:
            try:
                send_job_request(self.request_queue, job)
            except QueueError as exc:
                self.store.finish(job.job_id, JobStatus.FAILED, error=f"could not be enqueued: {exc}")
                if idempotency_key is not None:
                    self.store.forget_idempotency_key(idempotency_key, job.job_id)
                raise
        return job, created

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id} (unknown, or expired after 14 days)")
        return job

    def list(
        self,
        *,
        status: JobStatus | None = None,
        job_type: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JobPage:
        return self.store.list_jobs(status=status, job_type=job_type, limit=limit, cursor=cursor)

    def cancel(self, job_id: str) -> Job:
        """See :meth:`~cv_analytics.stores.jobs.JobStore.cancel`."""
        return self.store.cancel(job_id)

    def wait(self, job_id: str, timeout: float, known_etag: str | None = None) -> Job:
        """The job once it differs from ``known_etag`` (without one: once its status changes), once it
        is finished, or after ``timeout`` seconds (at most 20), whichever comes first."""
        job = self.get(job_id)
        changed = _change_test(job, known_etag)
        deadline = self.clock.monotonic() + min(max(timeout, 0.0), MAX_WAIT_SECONDS)
        while not changed(job) and (left := deadline - self.clock.monotonic()) > 0:
            self.watch.wait(min(self.poll_seconds, left))
            job = self.get(job_id)
        return job

    async def wait_async(self, job_id: str, timeout: float, known_etag: str | None = None) -> Job:
        """:meth:`wait` for an event loop: store reads in a thread, the wait on an ``asyncio.Event``."""
        job = await asyncio.to_thread(self.get, job_id)
        changed = _change_test(job, known_etag)
        deadline = self.clock.monotonic() + min(max(timeout, 0.0), MAX_WAIT_SECONDS)
        while not changed(job) and (left := deadline - self.clock.monotonic()) > 0:
            await self.watch.wait_async(job_id, min(self.poll_seconds, left))
            job = await asyncio.to_thread(self.get, job_id)
        return job


def _change_test(first: Job, known_etag: str | None) -> Callable[[Job], bool]:
    if known_etag is not None and known_etag == first.etag:
        return lambda job: job.etag != known_etag or job.finished
    if known_etag is not None:  # the caller's copy is out of date already
        return lambda job: True
    return lambda job: job.status is not first.status or job.finished
