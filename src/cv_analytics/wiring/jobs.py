"""The jobs service's parts over a wiring: the registry of built-in types with what they need, the worker
and the result processor (the job store is opened with the other backends, in :mod:`.backends`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE

if TYPE_CHECKING:
    from ..jobs import JobRegistry, JobWorker, ResultProcessor
    from .backends import Wiring


def builtin_registry(wiring: Wiring) -> JobRegistry:
    """``cv.match``, ``cv.summary`` and ``analytics.report``, each given what it needs, made on first use."""
    from ..job_types import JobDependencies, build_registry

    return build_registry(
        JobDependencies(
            skills_catalog=lambda: wiring.skills_catalog,
            insights=lambda: wiring.insights,
            retriever=lambda: wiring.retriever,
            llm_client=lambda: wiring.llm_client,
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
