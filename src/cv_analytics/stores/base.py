"""The store seam: correlation semantics once, storage primitives per backend.

The shape is AWS Powertools' idempotency persistence base: the public methods
(:meth:`Store.record_events`, :meth:`Store.sweep_orphans`) hold the rules, by
way of the pure planners in :mod:`.plan`; a backend implements a few private
methods and never the semantics:

``_load(ids, now)``
    the :class:`~.plan.CorrelationState` of each id that has something stored;
``_apply(plans, now)``
    write the plans, returning the ids whose preconditions no longer held;
``_stale_ids(cutoff, now, page_size)``
    pages of ids with a pending event received before ``cutoff``;
``_transaction()``
    what makes load-to-apply atomic where the backend can (SQLite's
    ``BEGIN IMMEDIATE``, the memory store's lock): there no plan is ever stale.

The base loads, plans, applies, and plans again the ids a concurrent writer
changed (:func:`~.optimistic.apply_until_settled`: bounded, clock-driven).
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..clock import Clock, SystemClock, now_ms
from ..events import EventShape, EventType, load_event
from ..exceptions import StoreUnavailableError
from .models import (
    Interaction,
    InteractionStatus,
    PendingEvent,
    RecordOutcome,
    ReportDelivery,
    StoreCounts,
    SweepResult,
    WeekSummary,
)
from .optimistic import apply_until_settled
from .plan import NOTHING_STORED, CorrelationPlan, CorrelationState, Event, PendingSides, plan_record, plan_sweep

__all__ = ["DEFAULT_PENDING_TTL_SECONDS", "Changes", "Event", "PendingSides", "Store", "decode_pending"]

log = logging.getLogger(__name__)

#: How long an event waits for its counterpart before TTL deletes it (the
#: existing deployment's query-events table keeps items 7 days).
DEFAULT_PENDING_TTL_SECONDS = 7 * 24 * 3600.0


@dataclass
class Changes:
    """The writes of plans applied atomically, merged (backends with a transaction)."""

    interaction_puts: dict[str, Interaction] = field(default_factory=dict)
    pending_puts: dict[tuple[str, EventType], PendingEvent] = field(default_factory=dict)
    pending_deletes: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, plans: Iterable[CorrelationPlan]) -> Changes:
        changes = cls()
        for plan in plans:
            cid = plan.correlation_id
            if plan.interaction is not None:
                changes.interaction_puts[cid] = plan.interaction
            if plan.remove_pending:
                changes.pending_deletes.add(cid)
            for event_type, pending in plan.new_pending.items():
                changes.pending_puts[(cid, event_type)] = pending
        return changes

    def __bool__(self) -> bool:
        return bool(self.interaction_puts or self.pending_puts or self.pending_deletes)


def decode_pending(body: str, shape: str | None, received_at: int, expires_at: int) -> PendingEvent:
    """A stored pending event from its body and stored shape; raises if it does not decode."""
    event = load_event(body)  # what the store kept, without the edge's rules (issue 7 items 2, 6)
    if shape is not None and shape != event.shape.value:
        event = event.model_copy(update={"shape": EventShape(shape)})
    return PendingEvent(event, received_at, expires_at)


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
        producer retry after the deduplication window) changes nothing. Safe
        with other writers of the same ids at once. Raises
        :class:`~cv_analytics.exceptions.StoreUnavailableError` when an id
        stays contended; what was written stays written, and recording the
        batch again completes it without double-counting.
        """
        if not events:
            return []
        now = now_ms(self.clock)
        by_id: dict[str, list[int]] = {}
        for index, event in enumerate(events):
            by_id.setdefault(event.correlation_id, []).append(index)
        outcomes: list[RecordOutcome | None] = [None] * len(events)
        ttl = self.pending_ttl_ms

        def attempt(ids: set[str]) -> set[str]:
            with self._transaction():
                states = self._load(ids, now)
                plans = [
                    plan_record(cid, [events[i] for i in by_id[cid]], states.get(cid, NOTHING_STORED), now, ttl)
                    for cid in ids
                ]
                contended = self._apply(plans, now)
            for plan in plans:
                if plan.correlation_id not in contended:
                    for index, outcome in zip(by_id[plan.correlation_id], plan.outcomes, strict=True):
                        outcomes[index] = outcome
            return contended

        left = apply_until_settled(set(by_id), attempt, clock=self.clock)
        if left:
            raise StoreUnavailableError(
                f"{len(left)} correlation id(s) kept changing under concurrent writers "
                f"({', '.join(sorted(left)[:3])}...); retry the batch"
            )
        return outcomes  # type: ignore[return-value]

    def sweep_orphans(self, older_than_seconds: float, *, batch_size: int = 500) -> SweepResult:
        """Turn events that waited longer than ``older_than_seconds`` into
        interactions: a lone query is ``unanswered``, a lone response an
        ``orphan_response``. A counterpart arriving later completes them.

        One id's bad event (one that does not decode, or whose timestamp no
        date can hold) is logged and closed with its reason, counted in
        :attr:`SweepResult.closed`; the sweep goes on with the others. An id a
        concurrent writer keeps changing is left for the next sweep.
        """
        now = now_ms(self.clock)
        cutoff = now - int(older_than_seconds * 1000)
        result = _SweepTally()
        seen: set[str] = set()
        for page in self._stale_ids(cutoff, now, batch_size):
            fresh = [cid for cid in page if cid not in seen]
            if not fresh:
                break  # only ids already handled (left as they were): nothing new to do
            seen.update(fresh)

            def attempt(ids: set[str]) -> set[str]:
                with self._transaction():
                    states = self._load(ids, now)
                    plans = [p for cid in ids if (p := plan_sweep(cid, states.get(cid, NOTHING_STORED), cutoff, now))]
                    contended = self._apply(plans, now)
                result.add(p for p in plans if p.correlation_id not in contended)
                return contended

            left = apply_until_settled(set(fresh), attempt, clock=self.clock)
            if left:
                log.warning("orphan sweep: %d id(s) kept changing; the next sweep takes them", len(left))
        return result.result()

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

    def weeks(self) -> list[WeekSummary]:
        """The week index: every ISO week holding interactions, oldest first (backends override the fold)."""
        by_week: dict[str, tuple[int, int]] = {}
        for interaction in self.iter_interactions():
            count, latest = by_week.get(interaction.week, (0, 0))
            by_week[interaction.week] = (count + 1, max(latest, interaction.processed_at))
        return [WeekSummary(week, count, latest) for week, (count, latest) in sorted(by_week.items())]

    # -- report deliveries (send-once) ---------------------------------------

    @abstractmethod
    def get_report_delivery(self, week: str, recipient: str) -> ReportDelivery | None: ...

    @abstractmethod
    def record_report_delivery(self, delivery: ReportDelivery) -> None: ...

    @abstractmethod
    def recent_report_deliveries(self, limit: int = 5) -> list[ReportDelivery]:
        """The latest deliveries, newest first (the last sent report is the first)."""

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

    @abstractmethod
    def prune_interactions(self, before_ms: int) -> int:
        """Delete the interactions stamped before ``before_ms`` (the retention), with what is derived
        from them; returns how many. Reports of the weeks they were in change accordingly."""

    def compact(self) -> None:  # noqa: B027 - optional hook
        """Give the space of deleted rows back to the file system, where the backend keeps a file."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # -- backend primitives ---------------------------------------------------

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """Make a load and the apply after it atomic where the backend can."""
        return contextlib.nullcontext()

    @abstractmethod
    def _load(self, correlation_ids: set[str], now: int) -> dict[str, CorrelationState]:
        """The stored state of those ids that have any (absent: nothing stored)."""

    @abstractmethod
    def _apply(self, plans: Sequence[CorrelationPlan], now: int) -> set[str]:
        """Write ``plans``; returns the ids whose preconditions (``plan.assumed``) no longer held."""

    @abstractmethod
    def _stale_ids(self, cutoff: int, now: int, page_size: int) -> Iterator[list[str]]:
        """Pages of ids with an unexpired pending event received before ``cutoff``.

        A page may repeat ids of an earlier one (a backend that queries again after each page)."""


class _SweepTally:
    def __init__(self) -> None:
        self.unanswered = self.orphans = self.closed = 0

    def add(self, plans: Iterable[CorrelationPlan]) -> None:
        for plan in plans:
            created = plan.created
            self.unanswered += created is InteractionStatus.UNANSWERED
            self.orphans += created is InteractionStatus.ORPHAN_RESPONSE
            for event_type, half in plan.closed.items():
                self.closed += 1
                log.error(
                    "orphan sweep: closed the pending %s of %s without an interaction: %s (body: %.500s)",
                    event_type.value, plan.correlation_id, half.reason, half.body,
                )  # fmt: skip

    def result(self) -> SweepResult:
        return SweepResult(unanswered=self.unanswered, orphan_responses=self.orphans, closed=self.closed)
