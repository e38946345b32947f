"""``/metrics`` in the Prometheus exposition format, and the HTTP request latency by route.

Each app has its own registry (several apps can live in one test process):
the request histogram and the events-logged counter of this process, the
analytics client's counters and the queues' figures read at scrape time (see
:mod:`cv_analytics.ops.metrics`), and, when ``serve`` runs workers, their
counters from the multiprocess directory it gave them.
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...client import AnalyticsClient
from ...ops.metrics import PREFIX, ClientCollector, QueueCollector
from ...wiring import ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE, Wiring

log = logging.getLogger(__name__)

router = APIRouter(tags=["metrics"])

#: Request latency buckets, seconds: a search answers in milliseconds; an LLM call may take seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Label of a request no route matched (a 404, a 413 before routing): one series, whatever the path.
UNMATCHED = "unmatched"


@dataclass(frozen=True)
class AppMetrics:
    registry: CollectorRegistry
    http_latency: Histogram
    events_logged: Counter


def app_metrics(
    wiring: Wiring, client_of: Callable[[], AnalyticsClient | None], worker_metrics_dir: pathlib.Path | None = None
) -> AppMetrics:
    """A registry for one app: its own metrics, the collectors, and the workers' directory if any."""
    registry = CollectorRegistry()
    metrics = AppMetrics(
        registry=registry,
        http_latency=Histogram(
            f"{PREFIX}http_request_duration_seconds",
            "Seconds from a request's arrival to its response's end, by route template.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        ),
        events_logged=Counter(
            f"{PREFIX}events_logged",
            "Events this process logged through the analytics client.",
            ["event_type"],
            registry=registry,
        ),
    )
    registry.register(ClientCollector(client_of))
    registry.register(QueueCollector((ANALYTICS_QUEUE, JOBS_REQUEST_QUEUE, JOBS_RESPONSE_QUEUE), wiring.queue))
    if worker_metrics_dir is not None:
        registry.register(_Guarded(MultiProcessCollector(None, path=str(worker_metrics_dir)), "the workers' metrics"))
    return metrics


class _Guarded:
    """A collector whose failure (a worker's half-written file) costs its own figures, not the scrape."""

    def __init__(self, collector: Collector, what: str) -> None:
        self.collector = collector
        self.what = what

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self.collector.collect())
        except Exception as exc:  # noqa: BLE001 - logged; the rest of the scrape goes on
            log.warning("metrics: %s could not be read: %s", self.what, exc)
            return []


class RequestMetricsMiddleware:
    """Observes every HTTP request's duration, labelled by the route template that matched."""

    def __init__(self, app: ASGIApp, *, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server sends when the app raises before starting a response

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            method = scope.get("method", "")
            self.histogram.labels(method if method in _METHODS else "other", _route_of(scope), str(status)).observe(
                time.perf_counter() - started
            )


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics.registry
    return Response(await run_in_threadpool(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)
