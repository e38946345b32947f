"""What is in the queues, the store and the client's spool right now, as typed records.

:meth:`SystemStatus.to_json` is the one shape of ``status --json``: camelCase
keys, numbers as numbers. Sections are optional so that the ones still to come
(the spool backlog, alarms, the jobs queues) join without changing the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client import SpoolStatus
from ..queues.base import Queue, QueueAttributes
from ..stores.base import Store
from ..stores.models import InteractionStatus, ReportDelivery, StoreCounts, WeekSummary
from .dlq import DeadLetter, peek_dead_letters

#: Dead letters read (left in place) per dead-letter queue to tally their failure reasons.
DEAD_LETTER_SAMPLE = 100
#: Dead letters shown per dead-letter queue, newest first.
LATEST_DEAD_LETTERS = 5
#: Report deliveries shown, newest first.
RECENT_REPORTS = 5


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
class DeadLetterReasons:
    """Why a queue's messages failed: its dead-letter queue's failure reasons, most common first."""

    queue: str
    dead_letter_queue: str
    #: the dead-letter queue's messages (visible + in flight + delayed)
    depth: int
    #: how many of them were read to tally ``reasons`` (at most :data:`DEAD_LETTER_SAMPLE`)
    sampled: int
    reasons: list[tuple[str, int]]
    #: the newest dead letters of the sample, newest first
    latest: list[DeadLetter]

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "deadLetterQueue": self.dead_letter_queue,
            "depth": self.depth,
            "sampled": self.sampled,
            "reasons": [{"reason": reason, "count": n} for reason, n in self.reasons],
            "latest": [
                {
                    "messageId": d.message_id,
                    "reason": d.reason,
                    "receiveCount": d.receive_count,
                    "firstSeenAt": d.first_seen_at,
                    "deadLetteredAt": d.dead_lettered_at,
                }
                for d in self.latest
            ],
        }


@dataclass(frozen=True)
class Runs:
    """When the pipeline last did its work, as the store records it."""

    #: ms since the epoch: the worker's latest write of an interaction (None before the first)
    last_worker_write_ms: int | None
    #: the latest report deliveries, newest first (the last sent report first)
    reports: list[ReportDelivery]

    def to_json(self) -> dict[str, Any]:
        return {
            "lastWorkerWriteMs": self.last_worker_write_ms,
            "reports": [
                {"week": r.week, "recipient": r.recipient, "channel": r.channel, "sentAtMs": r.sent_at}
                for r in self.reports
            ],
        }


@dataclass(frozen=True)
class SystemStatus:
    queues: list[QueueStatus]
    store: StoreStatus
    spool: SpoolStatus | None = None
    dead_letters: list[DeadLetterReasons] = field(default_factory=list)
    #: the week index: every ISO week holding interactions, oldest first
    weeks: list[WeekSummary] = field(default_factory=list)
    runs: Runs | None = None
    #: further sections (alarms, jobs) add a field here and a key in to_json
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"queues": [q.to_json() for q in self.queues], "store": self.store.to_json()}
        if self.spool is not None:
            data["spool"] = self.spool.to_json()
        data["deadLetters"] = [d.to_json() for d in self.dead_letters]
        data["weeks"] = [
            {"week": w.week, "interactions": w.interactions, "lastProcessedAtMs": w.last_processed_at} for w in self.weeks
        ]
        if self.runs is not None:
            data["runs"] = self.runs.to_json()
        data.update(self.extra)
        return data


def queue_rows(queue: Queue) -> list[QueueStatus]:
    """The queue and its dead-letter queue."""
    rows = [QueueStatus.from_attributes(queue.attributes())]
    if queue.dead_letter_queue is not None:
        rows.append(QueueStatus.from_attributes(queue.dead_letter_queue.attributes()))
    return rows


def dead_letter_reasons(queue: Queue, sample: int = DEAD_LETTER_SAMPLE) -> DeadLetterReasons | None:
    """The failure reasons in ``queue``'s dead-letter queue (None without one); an empty one is not read."""
    dlq = queue.dead_letter_queue
    if dlq is None:
        return None
    attrs = dlq.attributes()
    depth = attrs.visible + attrs.in_flight + attrs.delayed
    letters = peek_dead_letters(queue, sample) if depth else []
    reasons = Counter(letter.reason or "(no reason recorded)" for letter in letters)
    newest = sorted(letters, key=lambda d: d.dead_lettered_at or d.first_seen_at, reverse=True)
    return DeadLetterReasons(
        queue=queue.name,
        dead_letter_queue=dlq.name,
        depth=depth,
        sampled=len(letters),
        reasons=sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
        latest=newest[:LATEST_DEAD_LETTERS],
    )


def collect_status(queues: Sequence[Queue], store: Store, *, spool: SpoolStatus | None = None) -> SystemStatus:
    """Every queue (with its dead-letter queue and why its messages failed), the store's counts and week
    index, the last worker write and report deliveries, and the spool backlog when known."""
    weeks = store.weeks()
    return SystemStatus(
        queues=[row for queue in queues for row in queue_rows(queue)],
        store=StoreStatus.from_counts(store.counts()),
        spool=spool,
        dead_letters=[reasons for queue in queues if (reasons := dead_letter_reasons(queue)) is not None],
        weeks=weeks,
        runs=Runs(
            last_worker_write_ms=max((w.last_processed_at for w in weeks), default=None),
            reports=store.recent_report_deliveries(RECENT_REPORTS),
        ),
    )
