"""The job store seam: every state change decided here, once; a backend only loads and conditionally writes.

Each public method loads the job, works out the next version with the rules of
:mod:`.model`, and asks the backend to write it only if the stored version is
still the one loaded (SQLite: ``UPDATE … WHERE version = ?``; DynamoDB: a
condition expression). A lost race loads again and decides again, so two
workers, the result processor and the API can act on one job at once and the
rules still hold: a job is claimed by one worker at a time, and a finished job
never moves.

A backend implements:

``_load(job_id)``
    the job as stored (expired or not), or None;
``_insert(job, key, now)``
    store a new job and, when given, its idempotency key in one write, unless
    the key is held by a record unexpired at ``now``: then write nothing and return that record;
``_replace(job, expected_version)``
    write ``job`` if the stored one has ``expected_version``; False otherwise;
``_query(status, type, limit, after, now)``
    unexpired jobs newest first (``created_at`` desc, then ``job_id`` desc),
    strictly after the ``(created_at, job_id)`` position ``after``;
``_forget_key(key, job_id)``
    delete an idempotency key if it still names ``job_id``;
``_purge_expired(now)``
    delete expired jobs and keys (a backend whose TTL does it returns 0);
``ping()``, ``close()``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..._backoff import backoff_delay
from ...clock import Clock, SystemClock
from ...exceptions import (
    IdempotencyConflictError,
    InvalidCursorError,
    JobFinishedError,
    JobNotFoundError,
    StoreUnavailableError,
)
from .model import IDEMPOTENCY_KEY_SECONDS, JOB_RETENTION_SECONDS, IdempotencyRecord, Job, JobStatus

log = logging.getLogger(__name__)

#: Load–decide–write rounds before a change is given up on as contended.
MAX_ROUNDS = 8
MAX_LIST_LIMIT = 100


class ClaimOutcome(str, Enum):
    CLAIMED = "claimed"  # this worker holds it now: run it
    UNKNOWN = "unknown"  # no such job (never made, or expired)
    FINISHED = "finished"  # already terminal: the delivery is a duplicate
    CANCELLED = "cancelled"  # cancelled before it could run (now or earlier)
    HELD = "held"  # another worker holds a live lease on it


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    job: Job | None

    @property
    def claimed(self) -> bool:
        return self.outcome is ClaimOutcome.CLAIMED


@dataclass(frozen=True)
class FinishResult:
    """What a result did: ``applied`` False for a duplicate, late or unknown one (the job as it stands)."""

    applied: bool
    job: Job | None


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    #: pass back as ``cursor`` for the next page; None on the last
    next_cursor: str | None


def request_hash(job_type: str, job_input: Mapping[str, Any]) -> str:
    """A submission's fingerprint, for the idempotency check: same type and input, same hash."""
    canonical = json.dumps({"type": job_type, "input": job_input}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at, job.job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        if isinstance(created_at, bool) or not isinstance(created_at, int | float) or not isinstance(job_id, str):
            raise ValueError("wrong shape")
        return float(created_at), job_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError(f"cursor {cursor[:40]!r} is not one this service handed out: list again without it") from None


class JobStore(ABC):
    """Jobs with their states, leases, idempotency keys and TTL. See the module docstring."""

    #: True when the backend deletes expired items by itself (DynamoDB TTL)
    expires_by_itself = False

    def __init__(self, *, clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self.clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._listeners: list[Callable[[Job], None]] = []
        #: changes written inside :meth:`batch`, told to the listeners once it is committed
        self._batched = threading.local()

    # -- listening ------------------------------------------------------------

    def subscribe(self, listener: Callable[[Job], None]) -> None:
        """Call ``listener(job)`` after every change this store object writes (in this process only)."""
        self._listeners.append(listener)

    def _changed(self, job: Job) -> None:
        deferred = getattr(self._batched, "jobs", None)
        if deferred is not None:
            deferred.append(job)
            return
        for listener in self._listeners:
            try:
                listener(job)
            except Exception:  # noqa: BLE001 - a listener's bug never undoes a write
                log.exception("job change listener failed")

    # -- reads ----------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        """The job, or None when unknown or expired."""
        job = self._load(job_id)
        if job is None or job.expired(self.clock.now()):
            return None
        return job

    def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        job_type: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JobPage:
        """Unexpired jobs, newest first, ``limit`` (1–100) at a time."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be 1–{MAX_LIST_LIMIT}, got {limit}")
        after = decode_cursor(cursor) if cursor else None
        jobs = self._query(status, job_type, limit + 1, after, self.clock.now())
        more = len(jobs) > limit
        jobs = jobs[:limit]
        return JobPage(jobs, encode_cursor(jobs[-1]) if more else None)

    # -- changes --------------------------------------------------------------

    def create(
        self,
        job_id: str,
        job_type: str,
        job_input: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> tuple[Job, bool]:
        """A new queued job, or (with ``idempotency_key``) the job the key made within 24 hours:
        ``(job, created)``. :class:`IdempotencyConflictError` when the key's job came from
        another request (``fingerprint`` differs: see :func:`request_hash`)."""
        now = self.clock.now()
        job = Job(
            job_id=job_id,
            type=job_type,
            input=dict(job_input),
            created_at=now,
            updated_at=now,
            expires_at=now + JOB_RETENTION_SECONDS,
            idempotency_key=idempotency_key,
        )
        key = None
        if idempotency_key is not None:
            fingerprint = fingerprint or request_hash(job_type, job_input)
            key = IdempotencyRecord(
                key=idempotency_key, request_hash=fingerprint, job_id=job_id, expires_at=now + IDEMPOTENCY_KEY_SECONDS
            )
        for _ in range(MAX_ROUNDS):
            existing = self._insert(job, key, now)
            if existing is None:
                self._changed(job)
                return job, True
            assert key is not None
            if existing.request_hash != key.request_hash:
                raise IdempotencyConflictError(
                    f"Idempotency-Key {idempotency_key!r} was used for another request in the last 24 hours: "
                    "use a new key for a new request"
                )
            first = self.get(existing.job_id)
            if first is not None:
                return first, False
            # the key outlived its job (expired, or its enqueue failed): take the key over
            self._forget_key(existing.key, existing.job_id)
        raise StoreUnavailableError(f"idempotency key {idempotency_key!r} is contended; retry")

    def claim(self, job_id: str, owner: str, lease_seconds: float) -> Claim:
        """Take the job to run it: queued → running, or running whose holder's lease expired (it was killed).
        Counts an attempt; the lease lasts ``lease_seconds`` unless :meth:`heartbeat` extends it."""

        def decide(job: Job, now: float) -> tuple[Job | None, ClaimOutcome]:
            if job.status is JobStatus.CANCELLED:
                return None, ClaimOutcome.CANCELLED
            if job.finished or job.reported_status is not None:
                return None, ClaimOutcome.FINISHED
            if job.status is JobStatus.RUNNING and job.lease_live(now):
                return None, ClaimOutcome.HELD
            if job.cancel_requested:  # its worker died after being told: it never runs again
                return job.moved(JobStatus.CANCELLED, now, error="cancelled while running"), ClaimOutcome.CANCELLED
            claimed = job.moved(
                JobStatus.RUNNING,
                now,
                attempts=job.attempts + 1,
                started_at=now,
                lease_owner=owner,
                lease_expires_at=now + lease_seconds,
                progress=None,
                progress_message=None,
            )
            return claimed, ClaimOutcome.CLAIMED

        outcome, job = self._update(job_id, decide)
        return Claim(ClaimOutcome.UNKNOWN if outcome is None else outcome, job)

    def heartbeat(self, job_id: str, owner: str, lease_seconds: float) -> Job | None:
        """Extend ``owner``'s lease; the job as it stands (its ``cancel_requested`` tells the handler),
        unchanged when ``owner`` no longer holds it. None when unknown."""

        def decide(job: Job, now: float) -> tuple[Job | None, bool]:
            if not self._holds(job, owner):
                return None, False
            return job.changed(now, lease_expires_at=now + lease_seconds), True

        _, job = self._update(job_id, decide)
        return job

    def report_progress(self, job_id: str, owner: str, percent: int, message: str | None = None) -> Job | None:
        """Record a running job's progress (0–100) and a short message, while ``owner`` holds it."""
        if not 0 <= percent <= 100:
            raise ValueError(f"progress is 0–100, got {percent}")

        def decide(job: Job, now: float) -> tuple[Job | None, bool]:
            if not self._holds(job, owner):
                return None, False
            return job.changed(now, progress=percent, progress_message=message), True

        _, job = self._update(job_id, decide)
        return job

    def release(self, job_id: str, owner: str, error: str) -> Job | None:
        """The attempt failed and will be retried: running → queued, the lease given up, ``error`` kept."""

        def decide(job: Job, now: float) -> tuple[Job | None, bool]:
            if not self._holds(job, owner):
                return None, False
            return job.moved(
                JobStatus.QUEUED, now, lease_owner=None, lease_expires_at=None, reported_status=None, error=error
            ), True

        _, job = self._update(job_id, decide)
        return job

    def mark_reported(self, job_id: str, owner: str, status: JobStatus) -> Job | None:
        """``owner`` sent the job's final ``status`` to the response queue: until the result processor
        applies it, a claim answers FINISHED (a duplicate delivery must not run the job again)."""

        def decide(job: Job, now: float) -> tuple[Job | None, bool]:
            if not self._holds(job, owner):
                return None, False
            return job.changed(now, reported_status=status), True

        _, job = self._update(job_id, decide)
        return job

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> FinishResult:
        """Apply a final result; a job already finished keeps its first one (``applied`` False)."""
        if not status.terminal:
            raise ValueError(f"a result's status is terminal, not {status.value}")

        def decide(job: Job, now: float) -> tuple[Job | None, bool]:
            if job.finished:
                return None, False
            changes: dict[str, Any] = {"error": error, "reported_status": None}
            if status is JobStatus.SUCCEEDED:
                changes.update(result=dict(result or {}), progress=100, error=None)
            return job.moved(status, now, **changes), True

        applied, job = self._update(job_id, decide)
        return FinishResult(bool(applied), job)

    def cancel(self, job_id: str) -> Job:
        """A queued job becomes cancelled now; a running one is told (``cancel_requested``) and its
        worker ends it cancelled. Cancelling a cancelled job changes nothing.
        :class:`JobNotFoundError`, or :class:`JobFinishedError` for a job that finished otherwise."""

        def decide(job: Job, now: float) -> tuple[Job | None, bool]:
            if job.status is JobStatus.CANCELLED:
                return None, True
            if job.finished:
                raise JobFinishedError(f"job {job_id} has already {job.status.value}: nothing to cancel")
            if job.status is JobStatus.QUEUED:
                return job.moved(JobStatus.CANCELLED, now, error="cancelled before it ran"), True
            if job.cancel_requested:
                return None, True
            return job.changed(now, cancel_requested=True), True

        found, job = self._update(job_id, decide)
        if found is None or job is None:
            raise JobNotFoundError(f"no job {job_id} (unknown, or expired after 14 days)")
        return job

    def forget_idempotency_key(self, key: str, job_id: str) -> None:
        """Free ``key`` if it still names ``job_id`` (its job could not be enqueued: a retry may take the key)."""
        self._forget_key(key, job_id)

    def purge_expired(self) -> int:
        """Delete expired jobs and keys (reads already skip them); how many went."""
        return self._purge_expired(self.clock.now())

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Several changes as one write where the backend can (SQLite: one transaction); each keeps
        its own rules. The listeners hear of them once the batch is written. The result processor
        applies a batch of results in one."""
        if getattr(self._batched, "jobs", None) is not None:
            yield  # nested: the outer batch writes and tells
            return
        self._batched.jobs = []
        try:
            with self._batch_write():
                yield
            written = self._batched.jobs
        finally:
            self._batched.jobs = None
        for job in written:
            self._changed(job)

    def _batch_write(self) -> contextlib.AbstractContextManager[Any]:
        """The backend's way of writing several changes at once (none by default)."""
        return contextlib.nullcontext()

    def ping(self) -> None:  # noqa: B027 - a backend with a connection checks it
        """Raise :class:`~cv_analytics.exceptions.StoreUnavailableError` while the store does not answer."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- the one load–decide–write loop ---------------------------------------

    @staticmethod
    def _holds(job: Job, owner: str) -> bool:
        return job.status is JobStatus.RUNNING and job.lease_owner == owner

    def _update(self, job_id: str, decide: Callable[[Job, float], tuple[Job | None, Any]]) -> tuple[Any, Job | None]:
        """Load, ``decide`` (the next version or None for no change, and an answer), write if still current.

        Returns ``(answer, job as it now stands)``; ``(None, None)`` for an unknown or expired job."""
        for round_number in range(1, MAX_ROUNDS + 1):
            now = self.clock.now()
            job = self._load(job_id)
            if job is None or job.expired(now):
                return None, None
            new, answer = decide(job, now)
            if new is None:
                return answer, job
            if self._replace(new, job.version):
                self._changed(new)
                return answer, new
            self.clock.sleep(backoff_delay(round_number, 0.005, 0.1, self._rng))
        raise StoreUnavailableError(f"job {job_id} is changed by others faster than it can be updated; retry")

    # -- backend primitives ---------------------------------------------------

    @abstractmethod
    def _load(self, job_id: str) -> Job | None: ...

    @abstractmethod
    def _insert(self, job: Job, key: IdempotencyRecord | None, now: float) -> IdempotencyRecord | None: ...

    @abstractmethod
    def _replace(self, job: Job, expected_version: int) -> bool: ...

    @abstractmethod
    def _query(
        self, status: JobStatus | None, job_type: str | None, limit: int, after: tuple[float, str] | None, now: float
    ) -> list[Job]: ...

    @abstractmethod
    def _forget_key(self, key: str, job_id: str) -> None: ...

    @abstractmethod
    def _purge_expired(self, now: float) -> int: ...
