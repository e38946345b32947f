"""The jobs HTTP API: ``POST /jobs``, ``GET /jobs/{jobId}`` (``?wait=``, ETags), ``GET /jobs``, ``POST /jobs/{jobId}/cancel``.

The contract (DESIGN.md): ``202 Accepted`` and a ``Location`` for a new job;
``Idempotency-Key`` replays the first job for the same body (``200``) and
refuses another body (``409``); the status resource answers ``304`` to a
matching ``If-None-Match``. Every route needs the API key. Bad input is a
``422`` naming the field, an outage a ``503``, never a ``500``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from pydantic import BaseModel, ConfigDict, Field

from ...exceptions import (
    FatalError,
    IdempotencyConflictError,
    InvalidCursorError,
    JobFinishedError,
    JobNotFoundError,
    MessageTooLargeError,
    QueueError,
    StoreError,
)
from ...jobs import MAX_WAIT_SECONDS, Job, JobInputError, JobService, JobStatus
from ...jobs.service import MAX_IDEMPOTENCY_KEY_CHARS
from .deps import ApiKeyDep, WiringDep

#: Job ids are UUIDs; anything much longer is not one of ours.
MAX_JOB_ID_CHARS = 128


class ErrorBody(BaseModel):
    detail: str


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=128, description="The job type: cv.match, cv.summary or analytics.report.")
    input: dict[str, Any] = Field(default_factory=dict, description="The job type's input.")


class JobView(BaseModel):
    """A job as the API shows it."""

    jobId: str  # noqa: N815 - the wire's camelCase
    type: str
    status: JobStatus
    attempts: int
    progress: int | None = Field(None, ge=0, le=100)
    progressMessage: str | None = None  # noqa: N815
    input: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    cancelRequested: bool  # noqa: N815
    createdAt: str  # noqa: N815
    updatedAt: str  # noqa: N815
    startedAt: str | None = None  # noqa: N815
    finishedAt: str | None = None  # noqa: N815
    expiresAt: str  # noqa: N815


class JobList(BaseModel):
    jobs: list[JobView]
    nextCursor: str | None = Field(None, description="Pass as `cursor` for the next page; null on the last.")  # noqa: N815


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "missing or unknown API key",
        404: "no such job (or it expired after 14 days)",
        409: "conflict: the Idempotency-Key was used for another body, or the job has finished",
        413: "request body over 256 KiB, or a job too large for a queue message",
        503: "the queue or the job store is unavailable: retry later",
    }
    return {code: {"model": ErrorBody, "description": described[code]} for code in codes}


router = APIRouter(tags=["jobs"])


def _service(wiring: Any) -> JobService:
    return wiring.job_service()  # type: ignore[no-any-return]


@contextlib.contextmanager
def _as_http_errors() -> Iterator[None]:
    """The service's errors as HTTP answers: a client's mistake a 4xx naming it, an outage a 503."""
    try:
        yield
    except JobInputError as exc:
        errors = [{**error, "loc": ["body", *error["loc"]]} for error in exc.errors]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors) from exc
    except InvalidCursorError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[_field_error(("query", "cursor"), exc)]) from exc
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[_field_error(("body",), exc)]) from exc
    except JobNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except (IdempotencyConflictError, JobFinishedError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except MessageTooLargeError as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=f"the job does not fit a queue message: {exc}") from exc
    except (QueueError, StoreError, FatalError) as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"jobs service unavailable: {exc}", headers={"Retry-After": "5"}
        ) from exc


def _field_error(loc: tuple[str, ...], exc: Exception) -> dict[str, Any]:
    """One entry of a 422's ``detail``, shaped as FastAPI's own (``HTTPValidationError``)."""
    return {"loc": list(loc), "msg": str(exc), "type": "value_error"}


def _view(job: Job) -> JobView:
    return JobView.model_validate(job.to_public())


def _tags(header: str | None) -> set[str]:
    if not header:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


JobIdPath = Annotated[str, Path(alias="jobId", min_length=1, max_length=MAX_JOB_ID_CHARS)]


def _submission(body: bytes) -> JobSubmission:
    """The body read here rather than by FastAPI, which answers 400 to one that is not UTF-8: every malformed body is a 422."""
    try:
        return JobSubmission.model_validate(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body",), "msg": f"the body is not JSON: {exc}", "input": None}]
        ) from None
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False, include_context=False)]
        ) from None


@router.post(
    "/jobs",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": JobSubmission.model_json_schema()}},
        }
    },
    response_model=JobView,
    summary="Submit a job",
    responses={
        200: {"model": JobView, "description": "the job this Idempotency-Key made from the same body"},
        **_errors(401, 409, 413, 503),
        422: {"description": "the body is not JSON, or not a job of a known type with a valid input"},
    },
)
async def submit_job(
    request: Request,
    response: Response,
    wiring: WiringDep,
    _key: ApiKeyDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY_CHARS,
            description="Replays the first job for the same body for 24 hours.",
        ),
    ] = None,
) -> JobView:
    submission = _submission(await request.body())
    with _as_http_errors():
        service = _service(wiring)
        job, created = await asyncio.to_thread(
            service.submit, submission.type, submission.input, idempotency_key=idempotency_key
        )
    response.status_code = status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
    response.headers["Location"] = f"/jobs/{job.job_id}"
    response.headers["ETag"] = job.etag
    return _view(job)


@router.get(
    "/jobs/{jobId}",
    response_model=JobView,
    summary="A job's status, progress and result",
    responses={
        304: {"description": "not changed since the ETag in If-None-Match"},
        **_errors(401, 404, 503),
    },
)
async def get_job(
    job_id: JobIdPath,
    wiring: WiringDep,
    _key: ApiKeyDep,
    wait: Annotated[
        float | None,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="Hold the answer up to this many seconds until the job changes."),
    ] = None,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=1024)] = None,
) -> Response:
    known = _tags(if_none_match)
    with _as_http_errors():
        service = _service(wiring)
        if wait:
            job = await service.wait_async(job_id, wait, known_etag=next(iter(known)) if len(known) == 1 else None)
        else:
            job = await asyncio.to_thread(service.get, job_id)
    headers = {"ETag": job.etag, "Cache-Control": "no-cache"}
    if job.etag in known or "*" in known:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(_view(job).model_dump_json(), media_type="application/json", headers=headers)


@router.get("/jobs", response_model=JobList, summary="Jobs, newest first", responses=_errors(401, 503))
def list_jobs(
    wiring: WiringDep,
    _key: ApiKeyDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    job_type: Annotated[str | None, Query(alias="type", max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512, description="`nextCursor` of the previous page.")] = None,
) -> JobList:
    with _as_http_errors():
        page = _service(wiring).list(status=status_filter, job_type=job_type, limit=limit, cursor=cursor)
    return JobList(jobs=[_view(job) for job in page.jobs], nextCursor=page.next_cursor)


@router.post(
    "/jobs/{jobId}/cancel",
    response_model=JobView,
    summary="Cancel a job",
    description="A queued job is cancelled now (200); a running one is told and ends cancelled (202); "
    "a finished one cannot be (409).",
    responses={
        202: {"model": JobView, "description": "running: its handler is told, and it ends cancelled"},
        **_errors(401, 404, 409, 503),
    },
)
def cancel_job(job_id: JobIdPath, response: Response, wiring: WiringDep, _key: ApiKeyDep) -> JobView:
    with _as_http_errors():
        job = _service(wiring).cancel(job_id)
    response.status_code = status.HTTP_202_ACCEPTED if job.status is JobStatus.RUNNING else status.HTTP_200_OK
    response.headers["ETag"] = job.etag
    return _view(job)
