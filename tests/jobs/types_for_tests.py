"""Job types the tests run: real handlers that echo, fail, sleep, and record when each run starts and ends."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cv_analytics.jobs import JobContext, JobRegistry, PermanentJobError


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=1000)
    sleep: float = Field(0.0, ge=0, le=30)
    #: a file each run appends its start and end to (job id, pid, time), for the overlap checks
    record: str | None = None


class FailInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: fail with an ordinary error this many attempts, then succeed (None: always)
    failures: int | None = None
    permanent: bool = False


class SlowInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=60)
    obey_cancel: bool = True


def _record(path: str | None, event: str, context: JobContext) -> None:
    if path:
        line = json.dumps({"event": event, "job": context.job_id, "attempt": context.attempt, "pid": os.getpid(), "at": time.time()})
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def register_test_types(registry: JobRegistry, *, timeout_seconds: float = 60.0) -> JobRegistry:
    @registry.handler("test.echo", input=EchoInput, timeout_seconds=timeout_seconds)
    def echo(job: EchoInput, context: JobContext) -> dict[str, Any]:
        _record(job.record, "start", context)
        time.sleep(job.sleep)
        _record(job.record, "end", context)
        return {"echo": job.value, "attempt": context.attempt}

    @registry.handler("test.fail", input=FailInput, timeout_seconds=timeout_seconds)
    def fail(job: FailInput, context: JobContext) -> dict[str, Any]:
        if job.permanent:
            raise PermanentJobError("the input can never work")
        if job.failures is None or context.attempt <= job.failures:
            raise RuntimeError(f"boom on attempt {context.attempt}")
        return {"attempt": context.attempt}

    @registry.handler("test.slow", input=SlowInput, timeout_seconds=timeout_seconds)
    def slow(job: SlowInput, context: JobContext) -> dict[str, Any]:
        deadline = time.monotonic() + job.seconds
        step = 0
        while time.monotonic() < deadline:
            if job.obey_cancel:
                context.check_cancelled()
            step += 1
            context.report_progress(min(99, step), f"step {step}")
            time.sleep(0.02)
        return {"steps": step}

    return registry
