"""Settings -> backends: the one place that imports queue and store backends.

Backends are picked by URL: ``sqlite:///path/to/file.db`` for the embedded
queue or store, ``sqs://`` for Amazon SQS (queue URLs from ``AWS_SQS_URL`` and
the jobs variables), ``dynamodb://`` for DynamoDB (table names from
``CV_ANALYTICS_*_TABLE``). Backend modules are imported lazily, so the
embedded install needs no AWS SDK.
"""

from __future__ import annotations

import pathlib
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ..clock import Clock
from ..exceptions import ConfigurationError, MissingDependencyError
from .settings import ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, PREFIX, Settings

if TYPE_CHECKING:
    from ..assistant import Assistant, LLMClient, Retriever
    from ..boto.metering import RequestCounter
    from ..queues.base import Queue, QueueBackend, QueueConfig
    from ..insights import Insights
    from ..skills import SkillsCatalog
    from ..jobs import JobRegistry, JobService
    from ..stores.base import Store
    from ..stores.jobs import JobStore


def _sqlite_path(url: str) -> pathlib.Path:
    parsed = urlparse(url)
    # sqlite:///relative/or/absolute — everything after the third slash is the path
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
    if not path:
        raise ConfigurationError(f"{url!r} names no file: use sqlite:///path/to/file.db")
    return pathlib.Path(path)


def _needs_boto3(what: str, exc: ImportError) -> MissingDependencyError:
    return MissingDependencyError(f"the {what} backend needs boto3: pip install 'cv-analytics[aws]' ({exc})")


def open_queue_backend(
    settings: Settings, *, clock: Clock | None = None, request_counter: RequestCounter | None = None
) -> QueueBackend:
    """The queue backend the settings name (a new one: use :class:`Wiring` to share one)."""
    scheme = urlparse(settings.queue_url).scheme
    if scheme == "sqlite":
        from ..queues.sqlite import SQLiteQueueBackend

        return SQLiteQueueBackend(_sqlite_path(settings.queue_url), **({"clock": clock} if clock else {}))
    if scheme == "sqs":
        return open_sqs_backend(settings, clock=clock, request_counter=request_counter)  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"unknown queue URL {settings.queue_url!r}: use sqlite:///path.db or sqs:// "
        f"(set {PREFIX}QUEUE_URL or AWS_SQS_URL)"
    )


def open_sqs_backend(
    settings: Settings, *, clock: Clock | None = None, request_counter: RequestCounter | None = None
) -> Any:
    """The SQS backend whatever the queue URL says: the Lambda handlers are fed by SQS
    and resolve the queues their records come from (by ARN) on it."""
    try:
        from ..queues.sqs import SQSQueueBackend
    except ImportError as exc:
        raise _needs_boto3("sqs", exc) from exc
    return SQSQueueBackend(
        queue_urls=settings.sqs_queue_urls,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        request_counter=request_counter,
        clock=clock,
    )


def queue_config(settings: Settings, name: str) -> QueueConfig:
    """The configuration a named queue is opened with: its preset, the embedded analytics queue's
    visibility timeout from ``CV_ANALYTICS_VISIBILITY_TIMEOUT`` (30 s), and the jobs queues' when set."""
    from ..queues.presets import preset

    if name == ANALYTICS_QUEUE:
        return preset(name).with_visibility_timeout(settings.visibility_timeout_seconds)
    if name == JOBS_REQUEST_QUEUE and settings.jobs_visibility_timeout_seconds is not None:
        return preset(name).with_visibility_timeout(settings.jobs_visibility_timeout_seconds)
    if name == JOBS_RESPONSE_QUEUE and settings.jobs_results_visibility_timeout_seconds is not None:
        return preset(name).with_visibility_timeout(settings.jobs_results_visibility_timeout_seconds)
    return preset(name).config


def open_store(
    settings: Settings, *, clock: Clock | None = None, request_counter: RequestCounter | None = None
) -> Store:
    """The store the settings name (a new one: use :class:`Wiring` to share one)."""
    scheme = urlparse(settings.store_url).scheme
    if scheme == "sqlite":
        from ..stores.sqlite import SQLiteStore

        return SQLiteStore(
            _sqlite_path(settings.store_url), clock=clock, pending_ttl_seconds=settings.pending_ttl_seconds
        )
    if scheme == "dynamodb":
        try:
            from ..stores.dynamodb import DynamoDBStore
        except ImportError as exc:
            raise _needs_boto3("dynamodb", exc) from exc
        return DynamoDBStore(
            settings.dynamodb_tables,
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
            clock=clock,
            pending_ttl_seconds=settings.pending_ttl_seconds,
            request_counter=request_counter,
        )
    raise ConfigurationError(
        f"unknown store URL {settings.store_url!r}: use sqlite:///path.db or dynamodb:// (set {PREFIX}STORE_URL)"
    )


def open_job_store(
    settings: Settings, *, clock: Clock | None = None, request_counter: RequestCounter | None = None
) -> JobStore:
    """The job store ``CV_ANALYTICS_JOBS_STORE_URL`` names (a new one: :attr:`Wiring.job_store` shares one)."""
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


def insights_for(store: Store) -> Insights:
    """The weekly figures over ``store``: in SQL over a SQLite store, by walking interactions otherwise."""
    from ..insights import GenericInsights
    from ..stores.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        from ..insights.sqlite import SQLiteInsights

        return SQLiteInsights(store)
    return GenericInsights(store)


def load_skills_catalog(settings: Settings) -> SkillsCatalog:
    """The owner's skills catalog (``CV_ANALYTICS_SKILLS_FILE``), else the packaged one."""
    from ..skills import load_catalog

    return load_catalog(settings.skills_file)


def open_retriever_for(settings: Settings, catalog: SkillsCatalog) -> Retriever:
    """The retriever ``CV_ANALYTICS_RETRIEVAL`` names over ``catalog`` (a new one: use :class:`Wiring` to share one)."""
    from ..assistant import open_retriever

    return open_retriever(catalog, settings.retrieval_method)


def open_llm_client(settings: Settings) -> LLMClient | None:
    """A client of the configured LLM endpoint, or None when ``CV_ANALYTICS_LLM_URL`` or ``_MODEL`` is unset."""
    if not (settings.llm_url and settings.llm_model):
        return None
    from ..assistant import LLMClient

    return LLMClient(settings.llm_url, settings.llm_model, settings.llm_api_key)


class Wiring:
    """One process's backends, made on first use from ``settings`` and shared.

    Every queue of one backend shares its connections (and the clock); the
    store is made once. :meth:`close` releases them.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        request_counter: RequestCounter | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.clock = clock
        self.request_counter = request_counter
        self._queue_backend: QueueBackend | None = None
        self._queues: dict[str, Queue] = {}
        self._store: Store | None = None
        self._skills_catalog: SkillsCatalog | None = None
        self._job_store: JobStore | None = None
        self._job_registry: JobRegistry | None = None
        self._job_service: JobService | None = None
        #: the web app's first requests arrive together, on threads: one job store and service for all
        self._jobs_lock = threading.RLock()
        self._retriever: Retriever | None = None
        self._llm_client: LLMClient | None = None
        self._assistant: Assistant | None = None
        self._assistant_lock = threading.Lock()

    @property
    def queue_backend(self) -> QueueBackend:
        if self._queue_backend is None:
            self._queue_backend = open_queue_backend(
                self.settings, clock=self.clock, request_counter=self.request_counter
            )
        return self._queue_backend

    def queue(self, name: str = ANALYTICS_QUEUE) -> Queue:
        """A named queue (``analytics``, ``ai-job-request``, ``ai-job-response``), opened once."""
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = self.queue_backend.queue(name, queue_config(self.settings, name))
        return queue

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings, clock=self.clock, request_counter=self.request_counter)
        return self._store

    @property
    def insights(self) -> Insights:
        """The weekly figures over :attr:`store` (see :func:`insights_for`)."""
        return insights_for(self.store)

    @property
    def skills_catalog(self) -> SkillsCatalog:
        if self._skills_catalog is None:
            self._skills_catalog = load_skills_catalog(self.settings)
        return self._skills_catalog

    # -- the jobs service (see wiring/jobs.py) ----------------------------------

    @property
    def job_store(self) -> JobStore:
        with self._jobs_lock:
            if self._job_store is None:
                self._job_store = open_job_store(self.settings, clock=self.clock, request_counter=self.request_counter)
            return self._job_store

    @property
    def job_registry(self) -> JobRegistry:
        """The built-in job types (:mod:`cv_analytics.job_types`) over this wiring's catalog, store and assistant."""
        with self._jobs_lock:
            if self._job_registry is None:
                from .jobs import builtin_registry

                self._job_registry = builtin_registry(self)
            return self._job_registry

    def job_service(self) -> JobService:
        """The one :class:`~cv_analytics.jobs.JobService` of this wiring (its waiters share one watch)."""
        with self._jobs_lock:
            if self._job_service is None:
                from ..jobs import JobService

                self._job_service = JobService(
                    self.job_store,
                    self.queue(JOBS_REQUEST_QUEUE),
                    self.job_registry,
                    **({"clock": self.clock} if self.clock else {}),
                )
            return self._job_service

    @property
    def retriever(self) -> Retriever:
        """Retrieval over the skills catalog, by ``CV_ANALYTICS_RETRIEVAL`` (made once: embeddings load a model)."""
        with self._assistant_lock:
            if self._retriever is None:
                self._retriever = open_retriever_for(self.settings, self.skills_catalog)
            return self._retriever

    @property
    def llm_client(self) -> LLMClient | None:
        """The OpenAI-compatible endpoint of ``CV_ANALYTICS_LLM_URL`` and ``_MODEL`` (None unless both are set)."""
        with self._assistant_lock:
            if self._llm_client is None:
                self._llm_client = open_llm_client(self.settings)
            return self._llm_client

    @property
    def assistant(self) -> Assistant:
        """The CV assistant over the catalog, the retriever and the LLM client (made once: it keeps a cache)."""
        if self._assistant is None:
            from ..assistant import Assistant

            retriever, llm = self.retriever, self.llm_client
            with self._assistant_lock:
                if self._assistant is None:
                    self._assistant = Assistant(self.skills_catalog, retriever, llm)
        return self._assistant

    def close(self) -> None:
        for closable in (self._queue_backend, self._store, self._job_store, self._llm_client):
            if closable is not None:
                closable.close()
        self._queue_backend = self._store = self._job_store = self._llm_client = None
        self._job_service = None
        self._assistant = None
        self._queues.clear()

    def __enter__(self) -> Wiring:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_queue(
    settings: Settings, name: str = ANALYTICS_QUEUE, config: QueueConfig | None = None, *, clock: Clock | None = None
) -> Queue:
    """One named queue on a backend of its own (callers that keep several use :class:`Wiring`)."""
    return open_queue_backend(settings, clock=clock).queue(name, config or queue_config(settings, name))
