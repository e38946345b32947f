"""The job model and its states (defined with the job store seam, below this layer)."""

from ..stores.jobs import ALLOWED_TRANSITIONS, TERMINAL_STATUSES, Job, JobStatus, can_move

__all__ = ["ALLOWED_TRANSITIONS", "TERMINAL_STATUSES", "Job", "JobStatus", "can_move"]
