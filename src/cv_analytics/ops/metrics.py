"""Prometheus metrics: what is read when ``/metrics`` is scraped, and what the queue workers count.

Names carry the ``cv_analytics_`` prefix and their unit. Two kinds:

* read at scrape time by collectors, cheaply and without breaking the scrape when
  a backend fails: the analytics client's counters (:class:`ClientCollector`), each
  queue's depth and oldest message's age and each dead-letter queue's depth
  (:class:`QueueCollector`);
* counted where the work happens (:class:`ProcessingMetrics`): messages processed
  and failed, and their latency from enqueue to processed. The workers are other
  processes: they write through prometheus-client's multiprocess mode (the
  ``PROMETHEUS_MULTIPROC_DIR`` directory ``serve`` gives them) and the web app
  reads that directory with a ``MultiProcessCollector``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ..client import AnalyticsClient
from ..exceptions import ConfigurationError
from ..queues.base import Queue
from ..queues.batch import BatchResult, Status

log = logging.getLogger(__name__)

PREFIX = "cv_analytics_"

#: Seconds from enqueue to processed: the embedded worker answers in milliseconds, a backlog in minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class ClientCollector:
    """The analytics client's counters, as they are when scraped (nothing while there is no client)."""

    _COUNTERS = (
        ("events_sent", "sent", "Events the analytics queue accepted."),
        ("events_spooled", "spooled", "Events written to the disk spool while the queue could not take them."),
        ("events_dropped", "dropped", "Events lost on purpose: the buffer or the spool was full."),
        ("events_failed", "failed", "Events the queue can never accept (too large)."),
        ("events_invalid", "invalid", "Events that were not valid, never sent."),
        ("send_retries", "retries", "Sends retried after the queue failed."),
    )

    def __init__(self, client_of: Callable[[], AnalyticsClient | None]) -> None:
        self._client_of = client_of

    def collect(self) -> Iterator[Metric]:
        client = self._client_of()
        if client is None:
            return
        stats = client.stats()
        for name, attribute, documentation in self._COUNTERS:
            yield CounterMetricFamily(f"{PREFIX}{name}", documentation, value=getattr(stats, attribute))
        yield GaugeMetricFamily(f"{PREFIX}events_buffered", "Events in the client's memory buffer now.", value=stats.buffered)
        yield GaugeMetricFamily(f"{PREFIX}spool_bytes", "Bytes in the client's disk spool.", value=stats.spool_bytes)


class QueueCollector:
    """Each queue's messages by state and its oldest message's age, and each dead-letter queue's depth.

    One ``attributes()`` call per queue and per dead-letter queue and scrape. A
    queue that fails reports ``cv_analytics_queue_up 0`` and no figures; the
    others and the rest of the scrape go on. A queue the settings do not
    configure (the jobs queues on SQS without their URLs) is left out.
    """

    def __init__(self, names: Iterable[str], open_queue: Callable[[str], Queue]) -> None:
        self._names = tuple(names)
        self._open_queue = open_queue

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            f"{PREFIX}queue_messages", "Messages in a queue by state (visible, in_flight, delayed).", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            f"{PREFIX}queue_oldest_message_age_seconds",
            "Seconds since the oldest message still in the queue was sent (0 when empty).",
            labels=["queue"],
        )
        dead = GaugeMetricFamily(
            f"{PREFIX}dlq_messages", "Messages in the dead-letter queue of a queue.", labels=["queue"]
        )
        up = GaugeMetricFamily(f"{PREFIX}queue_up", "1 when the queue answered this scrape, else 0.", labels=["queue"])
        for name in self._names:
            try:
                queue = self._open_queue(name)
            except ConfigurationError:
                continue
            except Exception as exc:  # noqa: BLE001 - one queue's failure is its own figure, not the scrape's
                log.warning("metrics: queue %s could not be opened: %s", name, exc)
                up.add_metric([name], 0)
                continue
            for target, dead_letter_of in ((queue, None), (_dead_letter_queue(queue), queue.name)):
                if target is None:
                    continue
                try:
                    attrs = target.attributes()
                except Exception as exc:  # noqa: BLE001 - as above
                    log.warning("metrics: queue %s did not answer: %s", target.name, exc)
                    up.add_metric([target.name], 0)
                    continue
                up.add_metric([target.name], 1)
                for state, value in (("visible", attrs.visible), ("in_flight", attrs.in_flight), ("delayed", attrs.delayed)):
                    depth.add_metric([target.name, state], value)
                oldest.add_metric([target.name], attrs.oldest_age_seconds or 0.0)
                if dead_letter_of is not None:
                    dead.add_metric([dead_letter_of], attrs.visible + attrs.in_flight + attrs.delayed)
        yield from (depth, oldest, dead, up)


def _dead_letter_queue(queue: Queue) -> Queue | None:
    try:
        return queue.dead_letter_queue
    except Exception as exc:  # noqa: BLE001 - the queue's own figures still count
        log.warning("metrics: the dead-letter queue of %s could not be opened: %s", queue.name, exc)
        return None


@dataclass(frozen=True)
class ProcessingMetrics:
    """What a queue worker counts per batch it settles (see :meth:`record`)."""

    processed: Counter
    failed: Counter
    latency: Histogram

    def record(self, queue: str, result: BatchResult, now: float) -> None:
        """Count a settled batch of ``queue``: its messages handled, those that failed (retried, or
        dead-lettered), and each handled message's seconds from enqueue to ``now``."""
        processed = 0
        for item in result.items:
            if item.status is Status.SUCCEEDED:
                processed += 1
                if item.message is not None:
                    self.latency.labels(queue).observe(max(0.0, now - item.message.sent_at))
            elif item.status is Status.DEAD_LETTERED:
                self.failed.labels(queue, "dead_lettered").inc()
            elif item.status in (Status.TRANSIENT, Status.PERMANENT):
                self.failed.labels(queue, "retried").inc()
        if processed:
            self.processed.labels(queue).inc(processed)


_made: dict[int, ProcessingMetrics] = {}
_made_lock = threading.Lock()


def processing_metrics(registry: CollectorRegistry = REGISTRY) -> ProcessingMetrics:
    """The processing metrics of ``registry``, made on first use (a metric registers once per registry).

    In a process started with ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client
    writes every value to that directory, for the web app to read.
    """
    with _made_lock:
        metrics = _made.get(id(registry))
        if metrics is None:
            metrics = _made[id(registry)] = ProcessingMetrics(
                processed=Counter(
                    f"{PREFIX}messages_processed",
                    "Messages a worker handled and deleted.",
                    ["queue"],
                    registry=registry,
                ),
                failed=Counter(
                    f"{PREFIX}messages_failed",
                    "Messages a worker could not handle: retried later, or dead-lettered.",
                    ["queue", "outcome"],
                    registry=registry,
                ),
                latency=Histogram(
                    f"{PREFIX}processing_latency_seconds",
                    "Seconds from a message's enqueue to its processing.",
                    ["queue"],
                    buckets=LATENCY_BUCKETS,
                    registry=registry,
                ),
            )
        return metrics
