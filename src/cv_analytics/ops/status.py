"""What is in the queues and the store right now, as plain data."""

from __future__ import annotations

from typing import Any

from ..wiring import ANALYTICS_QUEUE, Settings, open_queue_backend, open_store
from ..queues.base import Queue, QueueAttributes


def _queue_row(attrs: QueueAttributes) -> dict[str, Any]:
    return {
        "name": attrs.name,
        "visible": attrs.visible,
        "inFlight": attrs.in_flight,
        "delayed": attrs.delayed,
        "oldestAgeSeconds": None if attrs.oldest_age_seconds is None else round(attrs.oldest_age_seconds, 3),
    }


def queue_rows(queue: Queue) -> list[dict[str, Any]]:
    """The queue and its dead-letter queue."""
    rows = [_queue_row(queue.attributes())]
    if queue.dead_letter_queue is not None:
        rows.append(_queue_row(queue.dead_letter_queue.attributes()))
    return rows


def collect_status(settings: Settings, queue_names: tuple[str, ...] = (ANALYTICS_QUEUE,)) -> dict[str, Any]:
    backend = open_queue_backend(settings)
    queues = [row for name in queue_names for row in queue_rows(backend.queue(name))]
    counts = open_store(settings).counts()
    return {
        "queues": queues,
        "store": {
            "interactions": {status.value: n for status, n in counts.interactions.items()},
            "totalInteractions": counts.total_interactions,
            "pendingQueries": counts.pending_queries,
            "pendingResponses": counts.pending_responses,
        },
    }
