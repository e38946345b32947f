"""Job types by name: each with its own pydantic input model, its handler and its timeout.

::

    registry = JobRegistry()

    @registry.handler("cv.match", input=MatchInput)
    def match(job: MatchInput, context: JobContext) -> dict:
        context.report_progress(50, "matching")
        return {...}

The input is validated at submission (a bad one is refused there, naming the
field) and again when the job runs (a job type changed in between fails the job
at once, without retries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from ..exceptions import JobError

#: A job may run this long before its attempt counts as failed (the seed's 15-minute Lambda timeout).
DEFAULT_JOB_TIMEOUT_SECONDS = 15 * 60.0


class PermanentJobError(JobError):
    """Raised by a handler when retrying cannot help (bad input found late, a refusal): the job fails now."""


class JobCancelledError(JobError):
    """Raised by :meth:`JobContext.check_cancelled` once the job was cancelled: the job ends ``cancelled``."""


class JobInputError(JobError, ValueError):
    """A submission refused: unknown type or invalid input. ``errors`` are pydantic-style
    (``loc`` from the request body: ``("type",)`` or ``("input", "week")``, ``msg``, ``type``)."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


class JobContext(Protocol):
    """What a running handler can ask of the worker."""

    @property
    def job_id(self) -> str: ...

    @property
    def attempt(self) -> int:
        """1 on the first run; more after a retry or a worker's crash."""
        ...

    def report_progress(self, percent: int, message: str | None = None) -> None:
        """0–100 and a short message, shown by ``GET /jobs/{id}`` while it runs."""
        ...

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel the job: stop, and return or raise :class:`JobCancelledError`."""
        ...

    def check_cancelled(self) -> None:
        """Raise :class:`JobCancelledError` if the job was cancelled."""
        ...

    def heartbeat(self) -> None:
        """Tell the queue and the store the job is alive now (the worker also does it on its own)."""
        ...


Handler = Callable[[Any, JobContext], Mapping[str, Any] | BaseModel]


@dataclass(frozen=True)
class JobType:
    name: str
    input_model: type[BaseModel]
    run: Handler
    timeout_seconds: float = DEFAULT_JOB_TIMEOUT_SECONDS
    description: str = ""

    def parse_input(self, raw: Any) -> BaseModel:
        """The input as the handler takes it; :class:`JobInputError` naming the fields that are wrong."""
        try:
            return self.input_model.model_validate(raw)
        except ValidationError as exc:
            errors = [
                {"loc": ["input", *error["loc"]], "msg": error["msg"], "type": error["type"]}
                for error in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
            raise JobInputError(f"invalid input for job type {self.name!r}: {where}", errors) from None

    def normalised_input(self, raw: Any) -> dict[str, Any]:
        """The input validated, as JSON with the model's field names on the wire (aliases)."""
        return self.parse_input(raw).model_dump(mode="json", by_alias=True)


class JobRegistry:
    """The job types a worker runs and the API accepts."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def handler(
        self,
        name: str,
        *,
        input: type[BaseModel],  # noqa: A002 - the issue's spelling: @registry.handler("cv.match", input=MatchInput)
        timeout_seconds: float = DEFAULT_JOB_TIMEOUT_SECONDS,
        description: str = "",
    ) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of job type ``name``."""

        def register(run: Handler) -> Handler:
            self.add(JobType(name, input, run, timeout_seconds, description or (run.__doc__ or "").strip()))
            return run

        return register

    def add(self, job_type: JobType) -> None:
        if job_type.name in self._types:
            raise ValueError(f"job type {job_type.name!r} is registered twice")
        if job_type.timeout_seconds <= 0:
            raise ValueError("a job type's timeout must be positive")
        self._types[job_type.name] = job_type

    def get(self, name: str) -> JobType:
        """The job type ``name``; :class:`JobInputError` (on ``type``) when there is none."""
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "none"
            raise JobInputError(
                f"unknown job type {name!r}; known: {known}",
                [{"loc": ["type"], "msg": f"unknown job type; known: {known}", "type": "unknown_job_type"}],
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    @property
    def names(self) -> list[str]:
        return sorted(self._types)

    def types(self) -> list[JobType]:
        return [self._types[name] for name in self.names]
