"""The store seam: correlation semantics once, storage primitives per backend.

:meth:`Store.record_events` is where "one interaction per correlation id,
exactly once, in either arrival order" lives. Backends implement loading and
saving (the underscored methods) inside :meth:`Store._transaction`; the SQLite
backend makes that a real serialisable transaction, so several worker processes
can record events at once without double-counting.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..clock import Clock, SystemClock, now_ms
from ..events import EventType, QueryEvent, ResponseEvent
from .models import (
    Interaction,
    PendingEvent,
    RecordOutcome,
    ReportDelivery,
    StoreCounts,
    SweepResult,
)

#: How long an event waits for its counterpart before TTL deletes it (the
#: existing deployment's query-events table keeps items 7 days).
DEFAULT_PENDING_TTL_SECONDS = 7 * 24 * 3600.0

Event = QueryEvent | ResponseEvent
PendingSides = dict[EventType, PendingEvent]


_QUERY, _RESPONSE = EventType.QUERY, EventType.RESPONSE


@dataclass
class Changes:
    """Writes one call of :meth:`Store.record_events` or :meth:`Store.sweep_orphans` makes."""

    interaction_puts: dict[str, Interaction] = field(default_factory=dict)
    pending_puts: dict[tuple[str, EventType], PendingEvent] = field(default_factory=dict)
    pending_deletes: set[str] = field(default_factory=set)

    def put_interaction(self, interaction: Interaction, *, stored_pending: bool = True) -> None:
        """Write ``interaction``; its pending events go, from this batch and (when
        ``stored_pending``) from storage: a pair met within one batch has none stored."""
        cid = interaction.correlation_id
        self.interaction_puts[cid] = interaction
        if stored_pending:
            self.pending_deletes.add(cid)
        self.pending_puts.pop((cid, _QUERY), None)
        self.pending_puts.pop((cid, _RESPONSE), None)

    def __bool__(self) -> bool:
        return bool(self.interaction_puts or self.pending_puts or self.pending_deletes)


class Store(ABC):
    """Pending events (with TTL), interactions (by correlation id and ISO week),
    report deliveries. Reads never return expired pending events, even where
    the backend deletes them lazily (DynamoDB may keep expired items for days)."""

    def __init__(
        self, *, clock: Clock | None = None, pending_ttl_seconds: float = DEFAULT_PENDING_TTL_SECONDS
    ) -> None:
        self.clock = clock or SystemClock()
        self.pending_ttl_ms = int(pending_ttl_seconds * 1000)

    # -- correlation ----------------------------------------------------------

    def record_events(self, events: Sequence[Event]) -> list[RecordOutcome]:
        """Record validated events; returns what each one did, in order.

        Idempotent: recording an event again (a duplicate, a redelivery, a
        producer retry after the deduplication window) changes nothing.
        """
        if not events:
            return []
        now = now_ms(self.clock)
        with self._transaction():
            interactions, pending = self._load({e.correlation_id for e in events}, now)
            changes = Changes()
            stored = set(pending)  # ids with events waiting in storage, as opposed to in this batch
            outcomes = [self._record_one(e, interactions, pending, stored, changes, now) for e in events]
            if changes:
                self._save(changes)
        return outcomes

    def _record_one(
        self,
        event: Event,
        interactions: dict[str, Interaction],
        pending: dict[str, PendingSides],
        stored: set[str],
        changes: Changes,
        now: int,
    ) -> RecordOutcome:
        cid = event.correlation_id
        existing = interactions.get(cid)
        if existing is not None:
            if existing.has_side(event.event_type):
                return RecordOutcome.DUPLICATE
            completed = existing.completed_with(event, processed_at=now)
            interactions[cid] = completed
            changes.put_interaction(completed, stored_pending=cid in stored)
            return RecordOutcome.COMPLETED_LATE
        sides = pending.setdefault(cid, {})
        if event.event_type in sides:
            return RecordOutcome.DUPLICATE
        counterpart = sides.get(event.event_type.counterpart)
        if counterpart is None:
            waiting = PendingEvent(event, received_at=now, expires_at=now + self.pending_ttl_ms)
            sides[event.event_type] = waiting
            changes.pending_puts[(cid, event.event_type)] = waiting
            return RecordOutcome.PENDING
        query, response = (event, counterpart.event) if event.event_type is EventType.QUERY else (counterpart.event, event)
        interaction = Interaction.from_events(query, response, processed_at=now)  # type: ignore[arg-type]
        interactions[cid] = interaction
        del pending[cid]
        changes.put_interaction(interaction, stored_pending=cid in stored)
        return RecordOutcome.CORRELATED

    def sweep_orphans(self, older_than_seconds: float, *, batch_size: int = 500) -> SweepResult:
        """Turn events that waited longer than ``older_than_seconds`` into
        interactions: a lone query is ``unanswered``, a lone response an
        ``orphan_response``. A counterpart arriving later completes them."""
        now = now_ms(self.clock)
        cutoff = now - int(older_than_seconds * 1000)
        unanswered = orphans = 0
        while True:
            with self._transaction():
                stale = self._pending_received_before(cutoff, now, batch_size)
                if not stale:
                    break
                interactions, _ = self._load(set(stale), now)
                changes = Changes()
                for cid, sides in stale.items():
                    query = sides.get(EventType.QUERY)
                    response = sides.get(EventType.RESPONSE)
                    if cid in interactions:  # an interaction already holds this id: the pending copy is stale
                        changes.pending_deletes.add(cid)
                        continue
                    interaction = Interaction.from_events(
                        query.event if query else None,  # type: ignore[arg-type]
                        response.event if response else None,  # type: ignore[arg-type]
                        processed_at=now,
                    )
                    changes.put_interaction(interaction)
                    unanswered += query is not None and response is None
                    orphans += query is None
                self._save(changes)
            if len(stale) < batch_size:
                break
        return SweepResult(unanswered=unanswered, orphan_responses=orphans)

    # -- reads ----------------------------------------------------------------

    @abstractmethod
    def get_interaction(self, correlation_id: str) -> Interaction | None: ...

    @abstractmethod
    def iter_interactions(self, week: str | None = None) -> Iterator[Interaction]:
        """Interactions of one ISO week (all when None), oldest first."""

    @abstractmethod
    def counts(self) -> StoreCounts:
        """Interactions by status and the pending (unexpired) events."""

    @abstractmethod
    def get_pending(self, correlation_id: str) -> PendingSides:
        """The unexpired events waiting under ``correlation_id``."""

    # -- report deliveries (send-once) ---------------------------------------

    @abstractmethod
    def get_report_delivery(self, week: str, recipient: str) -> ReportDelivery | None: ...

    @abstractmethod
    def record_report_delivery(self, delivery: ReportDelivery) -> None: ...

    # -- maintenance ----------------------------------------------------------

    #: True where the backend deletes expired items on its own (DynamoDB TTL):
    #: the worker then never calls :meth:`purge_expired`, which may be a scan.
    expires_by_itself: bool = False

    def ping(self) -> None:
        """Raise :class:`~cv_analytics.exceptions.StoreError` unless the store answers; cheap."""
        self.get_interaction("cv-analytics-health-check")

    def purge_expired(self) -> int:
        """Delete expired pending events now (reads ignore them anyway); returns how many."""
        return 0

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- backend primitives ---------------------------------------------------

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """Make the loads and saves inside atomic where the backend can."""
        return contextlib.nullcontext()

    @abstractmethod
    def _load(
        self, correlation_ids: set[str], now: int
    ) -> tuple[dict[str, Interaction], dict[str, PendingSides]]:
        """Interactions and unexpired pending events for these ids."""

    @abstractmethod
    def _save(self, changes: Changes) -> None:
        """Apply writes: interaction puts (insert or replace), pending deletes, pending puts."""

    @abstractmethod
    def _pending_received_before(self, cutoff: int, now: int, limit: int) -> dict[str, PendingSides]:
        """Up to ``limit`` correlation ids whose unexpired pending events were received before ``cutoff``."""
