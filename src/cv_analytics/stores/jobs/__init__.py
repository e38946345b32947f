"""The job store seam (:class:`JobStore`, the state rules once) and the job model; backends: ``sqlite`` (embedded), DynamoDB."""

from .base import Claim, ClaimOutcome, FinishResult, JobPage, JobStore, request_hash
from .model import (
    ALLOWED_TRANSITIONS,
    IDEMPOTENCY_KEY_SECONDS,
    JOB_RETENTION_SECONDS,
    TERMINAL_STATUSES,
    IdempotencyRecord,
    Job,
    JobStatus,
    can_move,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "IDEMPOTENCY_KEY_SECONDS",
    "JOB_RETENTION_SECONDS",
    "TERMINAL_STATUSES",
    "Claim",
    "ClaimOutcome",
    "FinishResult",
    "IdempotencyRecord",
    "Job",
    "JobPage",
    "JobStatus",
    "JobStore",
    "can_move",
    "request_hash",
]
