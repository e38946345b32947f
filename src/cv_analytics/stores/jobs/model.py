"""A job, its states, and the one table of which state may follow which.

The states are DESIGN.md's: queued → running → succeeded | failed | dead |
cancelled. A finished (terminal) state never moves, so a late or duplicate
result cannot undo another; ``running → queued`` is a retry (the attempt
failed, the message comes back after its backoff) and ``running → running`` a
reclaim (the previous holder's lease expired: it was killed). Every change
bumps ``version``, which the HTTP API serves as the job's ETag.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...exceptions import InvalidTransitionError

#: Results are kept 14 days, as the request and response queues keep messages.
JOB_RETENTION_SECONDS = 14 * 24 * 3600.0
#: An ``Idempotency-Key`` answers with its first job for 24 hours.
IDEMPOTENCY_KEY_SECONDS = 24 * 3600.0


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED})

#: Which status may follow which; a terminal status is followed by none.
ALLOWED_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    # a queued job may also finish without running: cancelled, dead-lettered, or a
    # result of an earlier attempt that arrives after its retry was queued
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, *TERMINAL_STATUSES}),
    JobStatus.RUNNING: frozenset({JobStatus.RUNNING, JobStatus.QUEUED, *TERMINAL_STATUSES}),
    **{status: frozenset() for status in TERMINAL_STATUSES},
}


def can_move(current: JobStatus, to: JobStatus) -> bool:
    return to in ALLOWED_TRANSITIONS[current]


class Job(BaseModel):
    """One job as the store keeps it. Times are seconds since the epoch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str
    type: str
    input: dict[str, Any]
    status: JobStatus = JobStatus.QUEUED
    #: how many times a worker claimed it (a reclaim after a crash counts)
    attempts: int = 0
    progress: int | None = Field(default=None, ge=0, le=100)
    progress_message: str | None = None
    result: dict[str, Any] | None = None
    #: why it failed, or why the last attempt failed while it waits for a retry
    error: str | None = None
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    #: read filters it out after this (TTL deletion is lazy on DynamoDB)
    expires_at: float
    idempotency_key: str | None = None
    cancel_requested: bool = False
    #: the worker that holds it while running, and until when (a heartbeat extends it)
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    #: the final status its worker put on the response queue, not yet applied by the result processor:
    #: a duplicate delivery meanwhile must not run it again
    reported_status: JobStatus | None = None
    version: int = 1

    @property
    def etag(self) -> str:
        return f'"{self.job_id}.{self.version}"'

    @property
    def finished(self) -> bool:
        return self.status.terminal

    def expired(self, now: float) -> bool:
        return self.expires_at <= now

    def lease_live(self, now: float) -> bool:
        return self.lease_owner is not None and self.lease_expires_at is not None and self.lease_expires_at > now

    def changed(self, now: float, **changes: Any) -> Job:
        """A copy with ``changes`` and the next version (no status change: progress, lease, cancel flag)."""
        return self.model_copy(update={**changes, "version": self.version + 1, "updated_at": now})

    def moved(self, to: JobStatus, now: float, **changes: Any) -> Job:
        """A copy in status ``to``; :class:`InvalidTransitionError` when the rules forbid it."""
        if not can_move(self.status, to):
            raise InvalidTransitionError(f"job {self.job_id} is {self.status.value}: it cannot become {to.value}")
        if to.terminal:
            changes = {
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
                "expires_at": now + JOB_RETENTION_SECONDS,
                **changes,
            }
        return self.changed(now, status=to, **changes)

    def to_public(self) -> dict[str, Any]:
        """What the HTTP API and ``jobs status --json`` show: camelCase, ISO 8601 times, no lease internals."""
        return {
            "jobId": self.job_id,
            "type": self.type,
            "status": self.status.value,
            "attempts": self.attempts,
            "progress": self.progress,
            "progressMessage": self.progress_message,
            "input": self.input,
            "result": self.result,
            "error": self.error,
            "cancelRequested": self.cancel_requested,
            "createdAt": iso_time(self.created_at),
            "updatedAt": iso_time(self.updated_at),
            "startedAt": iso_time(self.started_at),
            "finishedAt": iso_time(self.finished_at),
            "expiresAt": iso_time(self.expires_at),
        }


def iso_time(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class IdempotencyRecord(BaseModel):
    """An ``Idempotency-Key``: the job it made and a hash of the request that made it."""

    model_config = ConfigDict(frozen=True)

    key: str
    request_hash: str
    job_id: str
    expires_at: float
