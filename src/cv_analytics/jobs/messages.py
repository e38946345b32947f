"""The two messages of the jobs queues: a request (a job to run) and a result (how it ended). JSON, camelCase."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..stores.jobs import TERMINAL_STATUSES, JobStatus


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    def to_body(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    @classmethod
    def from_body(cls, body: str) -> Any:
        """The message, or a ``ValidationError`` naming what is wrong (the batch engine makes it permanent)."""
        return cls.model_validate_json(body)


class JobRequest(_Wire):
    """On the request queue: the job to run. The store holds the job; ``type`` and ``input`` are for people reading the queue."""

    job_id: str = Field(alias="jobId", min_length=1, max_length=128)
    type: str = Field(max_length=128)
    input: dict[str, Any] = Field(default_factory=dict)


class JobResult(_Wire):
    """On the response queue: how an attempt ended, for the result processor to write to the store."""

    job_id: str = Field(alias="jobId", min_length=1, max_length=128)
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=4096)
    attempt: int = Field(default=0, ge=0)

    @field_validator("status")
    @classmethod
    def _final(cls, status: JobStatus) -> JobStatus:
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"a result's status is one of {sorted(s.value for s in TERMINAL_STATUSES)}")
        return status
