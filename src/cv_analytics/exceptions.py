"""Errors are types: each says what went wrong and what to do about it."""

from __future__ import annotations


class CVAnalyticsError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(CVAnalyticsError):
    """A setting is missing or malformed (an environment variable, a URL, a cron expression)."""


class InvalidEventError(CVAnalyticsError, ValueError):
    """An event body is not a valid query or response event.

    ``field`` names the offending wire field (camelCase, dotted for nested ones)
    when one can be named.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class EventTooLargeError(InvalidEventError):
    """An event body is over the 256 KiB limit an SQS message can carry."""


class QueueError(CVAnalyticsError):
    """Base class of queue errors."""


class QueueUnavailableError(QueueError):
    """The queue cannot be reached right now (locked, down, throttled): retry later."""


class MessageTooLargeError(QueueError, ValueError):
    """A message body is over the queue's size limit; split or shorten it."""


class QueueNotFoundError(QueueError):
    """No queue of that name exists; create it first (``cv-analytics aws bootstrap`` on AWS)."""


class ReceiptHandleError(QueueError):
    """A receipt handle is unknown or stale (the message was received again since)."""


class StoreError(CVAnalyticsError):
    """Base class of store errors."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached right now: retry later."""


class SchemaVersionError(StoreError):
    """The database was written by a newer cv-analytics than this one; upgrade the package."""


class MissingDependencyError(CVAnalyticsError, ImportError):
    """An optional dependency is needed for this backend; the message says what to install."""


class PackageBuildError(CVAnalyticsError):
    """The Lambda deployment package could not be built (pip failed, or the package is not installed)."""


class ReportDeliveryError(CVAnalyticsError):
    """A weekly report could not be delivered; it is not marked sent, so the next run retries it."""


class FatalError(CVAnalyticsError):
    """No retry can fix this: stop and tell the operator (a worker must not loop on it)."""


class DatabaseCorruptError(FatalError):
    """An SQLite file is damaged or is not a database; the message names it and how to check or recover it.

    Deliberately neither a :class:`QueueUnavailableError` nor a :class:`StoreUnavailableError`
    (nor a :class:`StoreError`, which the processor retries): waiting does not repair a file.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class JobError(CVAnalyticsError):
    """Base class of the jobs service's errors."""


class JobNotFoundError(JobError, LookupError):
    """No job has this id (or it expired: results are kept 14 days)."""


class JobFinishedError(JobError):
    """The job has finished (succeeded, failed, dead): it can no longer be cancelled."""


class IdempotencyConflictError(JobError):
    """An ``Idempotency-Key`` already used, within 24 hours, for a different request body."""


class InvalidTransitionError(JobError):
    """A job state change the rules forbid (a finished job never moves; nothing moves back to queued but a retry)."""


class InvalidCursorError(JobError, ValueError):
    """A list cursor this store did not hand out: start again without one."""
