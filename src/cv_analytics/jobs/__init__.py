"""The jobs engine: job states, the handler registry, the worker, the result processor, the service, the client."""

from .messages import JobRequest, JobResult
from .model import TERMINAL_STATUSES, Job, JobStatus
from .registry import (
    DEFAULT_JOB_TIMEOUT_SECONDS,
    JobCancelledError,
    JobContext,
    JobInputError,
    JobRegistry,
    JobType,
    PermanentJobError,
)
from .results import JobResultHandler, ResultProcessor, ResultProcessorStats
from .service import MAX_WAIT_SECONDS, JobService
from .watch import JobWatch
from .worker import JobWorker, JobWorkerHandler, JobWorkerStats

__all__ = [
    "DEFAULT_JOB_TIMEOUT_SECONDS",
    "MAX_WAIT_SECONDS",
    "TERMINAL_STATUSES",
    "Job",
    "JobCancelledError",
    "JobContext",
    "JobInputError",
    "JobRegistry",
    "JobRequest",
    "JobResult",
    "JobResultHandler",
    "JobService",
    "JobStatus",
    "JobType",
    "JobWatch",
    "JobWorker",
    "JobWorkerHandler",
    "JobWorkerStats",
    "PermanentJobError",
    "ResultProcessor",
    "ResultProcessorStats",
]
