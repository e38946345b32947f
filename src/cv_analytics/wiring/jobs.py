"""The jobs service's backends and parts, from the settings: the job store, the registry of built-in
types with what they need, the worker and the result processor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..clock import Clock
from ..exceptions import ConfigurationError, MissingDependencyError
from .settings import JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, PREFIX, Settings

if TYPE_CHECKING:
    from ..boto.metering import RequestCounter
    from ..jobs import JobRegistry, JobWorker, ResultProcessor
    from ..stores.jobs import JobStore
    from .backends import Wiring


def open_job_store(
    settings: Settings, *, clock: Clock | None = None, request_counter: RequestCounter | None = None
) -> JobStore:
    """The job store ``CV_ANALYTICS_JOBS_STORE_URL`` names (a new one: :attr:`Wiring.job_store` shares one)."""
    from .backends import _sqlite_path

    scheme = urlparse(settings.jobs_store_url).scheme
    if scheme == "sqlite":
        from ..stores.jobs.sqlite import SQLiteJobStore

        return SQLiteJobStore(_sqlite_path(settings.jobs_store_url), clock=clock)
    if scheme == "dynamodb":
        try:
            from ..stores.jobs.dynamodb import DynamoDBJobStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise MissingDependencyError(
                f"the dynamodb job store needs boto3: pip install 'cv-analytics[aws]' ({exc})"
            ) from exc
        table = settings.dynamodb_tables.get("jobs")
        if not table:
            raise ConfigurationError(f"the dynamodb job store needs {PREFIX}JOBS_TABLE")
        return DynamoDBJobStore(  # type: ignore[no-any-return]
            table,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            clock=clock,
            request_counter=request_counter,
        )
    raise ConfigurationError(
        f"unknown job store URL {settings.jobs_store_url!r}: use sqlite:///path/jobs.db or dynamodb:// "
        f"(set {PREFIX}JOBS_STORE_URL)"
    )


def builtin_registry(wiring: Wiring) -> JobRegistry:
    """``cv.match``, ``cv.summary`` and ``analytics.report``, each given what it needs, made on first use."""
    from ..job_types import JobDependencies, build_registry

    return build_registry(
        JobDependencies(
            skills_catalog=lambda: wiring.skills_catalog,
            insights=lambda: wiring.insights,
            retriever=lambda: wiring.retriever,  # type: ignore[attr-defined,unused-ignore]
            llm_client=lambda: wiring.llm_client,  # type: ignore[attr-defined,unused-ignore]
            sweep_orphans=lambda: wiring.store.sweep_orphans(wiring.settings.orphan_timeout_seconds),
            clock=wiring.clock,
        )
    )


def job_worker(wiring: Wiring, *, registry: JobRegistry | None = None, **options: Any) -> JobWorker:
    """The embedded job worker on this wiring's queues and job store (``options``: :class:`~cv_analytics.jobs.JobWorker`'s)."""
    from ..jobs import JobWorker

    options.setdefault("retry_base_seconds", wiring.settings.jobs_retry_base_seconds)
    if wiring.clock is not None:
        options.setdefault("clock", wiring.clock)
    return JobWorker(
        wiring.queue(JOBS_REQUEST_QUEUE),
        wiring.queue(JOBS_RESPONSE_QUEUE),
        wiring.job_store,
        registry or wiring.job_registry,
        **options,
    )


def result_processor(wiring: Wiring, **options: Any) -> ResultProcessor:
    """The result processor on this wiring's response queue and job store."""
    from ..jobs import ResultProcessor

    if wiring.clock is not None:
        options.setdefault("clock", wiring.clock)
    return ResultProcessor(wiring.queue(JOBS_RESPONSE_QUEUE), wiring.job_store, **options)
