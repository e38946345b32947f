"""What one Lambda container's invocations share: queues, stores, SES client, the web app, made on first use.

Made on a container's first invocation, not at import (importing the handlers
imports neither boto3 nor pydantic), and reused by the invocations that follow:
building boto3 clients and reading queue attributes costs tens of milliseconds
and several requests that a warm invocation should not pay again.
:func:`configure` replaces what the next first invocation builds from (the
environment, a clock, a request counter): for tests, benchmarks and local runs.

This is the one place of the handlers that reads settings, all through
:mod:`cv_analytics.wiring`: the orphan timeout, ``CV_ANALYTICS_SWEEP_INTERVAL`` (seconds between orphan sweeps in one
container, 300) and ``CV_ANALYTICS_REPORT_CHANNEL`` (``ses`` unless it names
``file`` or ``smtp``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...clock import Clock, SystemClock
from ...wiring import Settings
from ...exceptions import ConfigurationError

if TYPE_CHECKING:
    from ...boto.metering import RequestCounter
    from ...jobs import JobResultHandler, JobWorkerHandler
    from ...queues.sqs import SQSQueue, SQSQueueBackend
    from ...insights import Insights
    from ...reporting.delivery import Deliverer
    from ...skills import SkillsCatalog
    from ...stores.base import Store
    from ...wiring import Wiring

DEFAULT_SWEEP_INTERVAL_SECONDS = 300.0


@dataclass(frozen=True)
class _Overrides:
    env: Mapping[str, str] | None = None
    clock: Clock | None = None
    request_counter: RequestCounter | None = None

    def settings(self) -> Settings:
        return Settings.from_env(self.env)


_lock = threading.Lock()
_overrides = _Overrides()
_processor: ProcessorState | None = None
_reporter: ReporterState | None = None
_job_worker: JobWorkerState | None = None
_job_results: JobResultsState | None = None
_http_api: HttpApiState | None = None


def configure(
    *,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    request_counter: RequestCounter | None = None,
) -> None:
    """Drop the warm state; the next invocation builds it from these.

    ``env`` replaces ``os.environ`` as the source of settings, ``clock`` the
    system clock (orphan timeouts, sweep interval, pending TTL), and
    ``request_counter`` counts every AWS request the handlers make. With no
    arguments this is :func:`reset`.
    """
    global _overrides, _processor, _reporter, _job_worker, _job_results, _http_api
    with _lock:
        for state in (_processor, _reporter, _job_worker, _job_results, _http_api):
            if state is not None:
                state.close()
        _overrides = _Overrides(env, clock, request_counter)
        _processor = _reporter = _job_worker = _job_results = _http_api = None


def reset() -> None:
    """Forget the warm state and any :func:`configure` overrides, as a new container would."""
    configure()


def is_cold() -> tuple[bool, bool]:
    """Whether the processor's and the reporter's state are yet to be made (for tests of import cost)."""
    return _processor is None, _reporter is None


class QueueResolver:
    """The queues SQS events come from, by ``eventSourceARN``, on one SQS backend; each made once.

    The SQS backend itself, not the configured queue URL: an event names its
    queue by ARN, which only the SQS backend can resolve (and dead-lettering
    must go to that queue's DLQ).
    """

    def __init__(self, settings: Settings, clock: Clock, request_counter: RequestCounter | None, default: str) -> None:
        from ...wiring import open_sqs_backend

        self.settings = settings
        #: the queue of records that name none (a hand-made event)
        self.default = default
        self.backend: SQSQueueBackend = open_sqs_backend(settings, request_counter=request_counter, clock=clock)
        self._queues: dict[str, SQSQueue] = {}

    def queue(self, name: str) -> SQSQueue:
        """A configured queue by name (``ai-job-response``...)."""
        return self.backend.queue(name)

    def queue_for(self, source_arn: str | None) -> SQSQueue:
        """The queue a record came from (its ``eventSourceARN``; the default queue when none), made once."""
        key = source_arn or ""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queue_of_arn(source_arn) if source_arn else self.queue(self.default)
            self._queues[key] = queue
        return queue

    def _queue_of_arn(self, arn: str) -> SQSQueue:
        # arn:aws:sqs:<region>:<account>:<name>
        parts = arn.split(":")
        if len(parts) != 6 or parts[2] != "sqs":
            raise ConfigurationError(f"eventSourceARN {arn!r} is not an SQS queue ARN: this handler takes SQS events")
        account, name = parts[4], parts[5]
        # A configured queue when the ARN names one: the same queue object the handler already
        # opened by name (no second attribute read), and no GetQueueUrl request (nor permission).
        for configured, url in self.settings.sqs_queue_urls.items():
            if url.rstrip("/").rsplit("/", 1)[-1] == name:
                return self.queue(configured)
        with self.backend.guard(f"look up SQS queue {name!r}"):
            response = self.backend.client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        return self.backend.queue_by_url(str(response["QueueUrl"]))

    def close(self) -> None:
        self.backend.close()


class ProcessorState:
    """What one container's analytics invocations share."""

    def __init__(self, overrides: _Overrides) -> None:
        # Imported here, not at module level: they pull in boto3 and pydantic.
        from ...wiring import ANALYTICS_QUEUE, open_store

        settings = overrides.settings()
        self.settings = settings
        self.clock: Clock = overrides.clock or SystemClock()
        self.queues = QueueResolver(settings, self.clock, overrides.request_counter, ANALYTICS_QUEUE)
        self.store: Store = open_store(settings, clock=self.clock, request_counter=overrides.request_counter)
        self.orphan_timeout_seconds = settings.orphan_timeout_seconds
        interval = settings.sweep_interval_seconds
        self.sweep_interval_seconds = DEFAULT_SWEEP_INTERVAL_SECONDS if interval is None else interval
        self.next_sweep = self.clock.now()  # a container's first invocation sweeps
        self.invocations = 0

    def queue_for(self, source_arn: str | None) -> SQSQueue:
        return self.queues.queue_for(source_arn)

    def close(self) -> None:
        self.queues.close()
        self.store.close()


class ReporterState:
    """What one container's reporter invocations share."""

    def __init__(self, overrides: _Overrides) -> None:
        from ...wiring import insights_for, load_skills_catalog, open_store
        from ...wiring.reporting import report_channel

        self.settings = overrides.settings()
        self.clock: Clock = overrides.clock or SystemClock()
        self.request_counter = overrides.request_counter
        self.store: Store = open_store(self.settings, clock=self.clock, request_counter=overrides.request_counter)
        self.insights: Insights = insights_for(self.store)
        self.catalog: SkillsCatalog = load_skills_catalog(self.settings)
        self.channel = report_channel(self.settings, default="ses")
        self._ses_client: Any = None

    def deliverer(self) -> Deliverer:
        """A deliverer for this invocation (fresh, so its message ids are this invocation's), sharing the client."""
        from ...wiring.reporting import open_deliverer, ses_client, ses_deliverer

        if self.channel != "ses":
            return open_deliverer(self.settings)
        if self._ses_client is None:
            self._ses_client = ses_client(self.settings, request_counter=self.request_counter)
        return ses_deliverer(self.settings, client=self._ses_client)

    def close(self) -> None:
        self.store.close()
        if self._ses_client is not None:
            self._ses_client.close()


class JobWorkerState:
    """What one container's job request invocations share: the queues, the job store, the job types."""

    def __init__(self, overrides: _Overrides) -> None:
        from ...jobs import JobWorkerHandler
        from ...wiring import JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Wiring

        self.settings = overrides.settings()
        self.clock: Clock = overrides.clock or SystemClock()
        self.queues = QueueResolver(self.settings, self.clock, overrides.request_counter, JOBS_REQUEST_QUEUE)
        # the job store, the job types and what they read (the analytics store, the skills catalog)
        self.wiring: Wiring = Wiring(self.settings, clock=overrides.clock, request_counter=overrides.request_counter)
        self.handler: JobWorkerHandler = JobWorkerHandler(
            self.wiring.job_store,
            self.wiring.job_registry,
            self.queues.queue(JOBS_REQUEST_QUEUE),
            self.queues.queue(JOBS_RESPONSE_QUEUE),
            clock=self.clock,
            retry_base_seconds=self.settings.jobs_retry_base_seconds,
        )
        # jobs whose request SQS dead-lettered by itself (a container killed on the last receive)
        self.next_dead_letter_sweep = self.clock.now()  # a container's first invocation sweeps
        self.invocations = 0

    def close(self) -> None:
        self.queues.close()
        self.wiring.close()


class JobResultsState:
    """What one container's job result invocations share: the response queue and the job store."""

    def __init__(self, overrides: _Overrides) -> None:
        from ...jobs import JobResultHandler
        from ...wiring import JOBS_RESPONSE_QUEUE, Wiring

        self.settings = overrides.settings()
        self.clock: Clock = overrides.clock or SystemClock()
        self.queues = QueueResolver(self.settings, self.clock, overrides.request_counter, JOBS_RESPONSE_QUEUE)
        self.wiring: Wiring = Wiring(self.settings, clock=overrides.clock, request_counter=overrides.request_counter)
        self.handler: JobResultHandler = JobResultHandler(self.wiring.job_store)
        self.invocations = 0

    def close(self) -> None:
        self.queues.close()
        self.wiring.close()


class HttpApiState:
    """The web app behind API Gateway: one app over one wiring per container, adapted by mangum."""

    def __init__(self, overrides: _Overrides) -> None:
        from mangum import Mangum

        from ...wiring import Wiring
        from ..web.app import create_app

        self.wiring: Wiring = Wiring(overrides.settings(), clock=overrides.clock, request_counter=overrides.request_counter)
        # lifespan off: mangum would run the app's startup and shutdown around every invocation,
        # and the shutdown would close the wiring the next invocation needs
        self.adapter: Any = Mangum(create_app(self.wiring, close_wiring=False), lifespan="off")
        self.invocations = 0

    def close(self) -> None:
        self.wiring.close()


def processor_state() -> ProcessorState:
    global _processor
    with _lock:
        if _processor is None:
            _processor = ProcessorState(_overrides)
        return _processor


def reporter_state() -> ReporterState:
    global _reporter
    with _lock:
        if _reporter is None:
            _reporter = ReporterState(_overrides)
        return _reporter


def job_worker_state() -> JobWorkerState:
    global _job_worker
    with _lock:
        if _job_worker is None:
            _job_worker = JobWorkerState(_overrides)
        return _job_worker


def job_results_state() -> JobResultsState:
    global _job_results
    with _lock:
        if _job_results is None:
            _job_results = JobResultsState(_overrides)
        return _job_results


def http_api_state() -> HttpApiState:
    global _http_api
    with _lock:
        if _http_api is None:
            _http_api = HttpApiState(_overrides)
        return _http_api
