"""What is in the queues, the store and the client's spool right now, as typed records.

:meth:`SystemStatus.to_json` is the one shape of ``status --json``: camelCase
keys, numbers as numbers. Sections are optional so that the ones still to come
(the spool backlog, alarms, the jobs queues) join without changing the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client import SpoolStatus
from ..queues.base import Queue, QueueAttributes
from ..stores.base import Store
from ..stores.models import InteractionStatus, StoreCounts


def camel_case(name: str) -> str:
    """``orphan_response`` → ``orphanResponse``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class QueueStatus:
    name: str
    visible: int
    in_flight: int
    delayed: int
    #: seconds since the oldest message still in the queue was sent; None when empty
    oldest_age_seconds: float | None

    @classmethod
    def from_attributes(cls, attrs: QueueAttributes) -> QueueStatus:
        age = None if attrs.oldest_age_seconds is None else round(attrs.oldest_age_seconds, 3)
        return cls(attrs.name, attrs.visible, attrs.in_flight, attrs.delayed, age)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "visible": self.visible,
            "inFlight": self.in_flight,
            "delayed": self.delayed,
            "oldestAgeSeconds": self.oldest_age_seconds,
        }


@dataclass(frozen=True)
class StoreStatus:
    interactions: dict[InteractionStatus, int]
    pending_queries: int
    pending_responses: int

    @classmethod
    def from_counts(cls, counts: StoreCounts) -> StoreStatus:
        return cls(dict(counts.interactions), counts.pending_queries, counts.pending_responses)

    @property
    def total_interactions(self) -> int:
        return sum(self.interactions.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "interactions": {camel_case(status.value): n for status, n in self.interactions.items()},
            "totalInteractions": self.total_interactions,
            "pendingQueries": self.pending_queries,
            "pendingResponses": self.pending_responses,
        }


@dataclass(frozen=True)
class SystemStatus:
    queues: list[QueueStatus]
    store: StoreStatus
    spool: SpoolStatus | None = None
    #: further sections (alarms, jobs) add a field here and a key in to_json
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"queues": [q.to_json() for q in self.queues], "store": self.store.to_json()}
        if self.spool is not None:
            data["spool"] = self.spool.to_json()
        data.update(self.extra)
        return data


def queue_rows(queue: Queue) -> list[QueueStatus]:
    """The queue and its dead-letter queue."""
    rows = [QueueStatus.from_attributes(queue.attributes())]
    if queue.dead_letter_queue is not None:
        rows.append(QueueStatus.from_attributes(queue.dead_letter_queue.attributes()))
    return rows


def collect_status(queues: Sequence[Queue], store: Store, *, spool: SpoolStatus | None = None) -> SystemStatus:
    """Every queue (with its dead-letter queue), the store's counts, and the spool backlog when known."""
    return SystemStatus(
        queues=[row for queue in queues for row in queue_rows(queue)],
        store=StoreStatus.from_counts(store.counts()),
        spool=spool,
    )
